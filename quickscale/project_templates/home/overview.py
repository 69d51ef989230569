"""What the signed-in home shows, read in a fixed number of queries whatever the account holds.

Reads only, through each app's selectors: the balance (one query), the chart's
30 days (one), the plan (one), recent calls (one), the services (one) and the
four next steps (three; "try a service" comes from the recent calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from allauth.account.models import EmailAddress
from django.conf import settings
from django.urls import reverse

from api import selectors as api_selectors
from credits import ledger
from credits import selectors as credit_selectors
from credits.ledger import Balance
from home.chart import UsageChart, usage_chart
from services import selectors as service_selectors
from services.base import BaseService
from services.exceptions import UnknownService
from services.models import Service, ServiceUsage
from services.registry import create_service_instance
from stripe_manager import selectors as stripe_selectors
from stripe_manager.gateway import payments_enabled
from stripe_manager.models import UserSubscription
from users.models import CustomUser

RECENT_CALLS = 5
CHART_DAYS = 30


@dataclass(frozen=True)
class NextStep:
    key: str
    title: str
    text: str
    url: str
    action: str


@dataclass(frozen=True)
class ServiceCard:
    service: Service
    pricing: str  # how it is priced when not per call (per token); "" else


@dataclass(frozen=True)
class Overview:
    balance: Balance | None
    chart: UsageChart | None
    subscription: UserSubscription | None
    recent_calls: list[ServiceUsage]
    services: list[ServiceCard]
    next_steps: list[NextStep] = field(default_factory=list)
    payments_enabled: bool = False


def _pricing(service: Service) -> str:
    """A service's own pricing text (an LLM service's price per token); "" if per call."""
    try:
        instance = create_service_instance(service.name)
    except UnknownService:
        return ""
    if type(instance).pricing is BaseService.pricing:
        return ""  # priced per call: the row's credit_cost says it, no query
    instance._configuration = service
    return instance.pricing()


def _next_steps(
    user: CustomUser, *, subscription: UserSubscription | None, tried: bool, paying: bool
) -> list[NextStep]:
    steps = []
    if not EmailAddress.objects.filter(user=user, verified=True).exists():
        steps.append(
            NextStep(
                key="confirm-email",
                title="Confirm your email",
                text="We sent you a link. Confirm it to reset your password and get receipts.",
                url=reverse("account_email"),
                action="Email settings",
            )
        )
    if paying and subscription is None and not stripe_selectors.has_bought(user):
        steps.append(
            NextStep(
                key="buy",
                title="Buy credits or subscribe",
                text="Pay as you go with a credit pack, or pick a plan that renews every month.",
                url=reverse("stripe_manager:pricing"),
                action="See pricing",
            )
        )
    if not api_selectors.has_api_key(user):
        steps.append(
            NextStep(
                key="api-key",
                title="Create an API key",
                text="Call every service from your own code with a key.",
                url=reverse("api_keys:list"),
                action="Create a key",
            )
        )
    if not tried:
        steps.append(
            NextStep(
                key="try-service",
                title="Try a service",
                text="Run one from its page and see the result and what it cost.",
                url=reverse("services:list"),
                action="Browse services",
            )
        )
    return steps


def overview(user: CustomUser) -> Overview:
    """Everything the home shows for ``user``."""
    credits_on = bool(settings.CREDIT_SYSTEM_ENABLED)
    paying = payments_enabled()
    subscription = stripe_selectors.current_subscription(user) if paying else None
    recent = service_selectors.latest_usages(user, limit=RECENT_CALLS)
    return Overview(
        balance=ledger.balance(user) if credits_on else None,
        chart=usage_chart(credit_selectors.daily_usage(user, days=CHART_DAYS))
        if credits_on
        else None,
        subscription=subscription,
        recent_calls=recent,
        services=[
            ServiceCard(service=service, pricing=_pricing(service))
            for service in service_selectors.active_services()
        ],
        next_steps=_next_steps(user, subscription=subscription, tried=bool(recent), paying=paying),
        payments_enabled=paying,
    )
