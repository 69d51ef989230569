"""Local pages standing in for Stripe's hosted checkout and portal, and the demo's clock."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from stripe_manager import selectors
from stripe_manager.gateway import GatewayError, get_gateway, uses_simulator
from stripe_manager.models import StripeCustomer
from stripe_manager.money import from_minor
from stripe_manager.simulator import cards, store
from stripe_manager.simulator.gateway import SimulatorGateway


def _simulator() -> SimulatorGateway:
    if not uses_simulator():
        raise Http404("The Stripe simulator is off.")
    gateway = get_gateway()
    assert isinstance(gateway, SimulatorGateway)
    return gateway


def _owned(request: HttpRequest, obj: dict[str, Any] | None) -> dict[str, Any]:
    """404 unless the simulated object belongs to the signed-in user's customer."""
    customer = StripeCustomer.objects.filter(user_id=request.user.pk).first()
    if obj is None or customer is None or obj["customer"] != customer.stripe_customer_id:
        raise Http404("No such session.")
    return obj


def _see_other(url: str) -> HttpResponse:
    response = redirect(url)
    response.status_code = 303
    return response


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest, session_id: str) -> HttpResponse:
    """The simulated hosted checkout: pay or cancel."""
    simulator = _simulator()
    session = _owned(request, simulator.checkout_session(session_id))
    if request.method == "POST":
        if request.POST.get("action") == "pay":
            card = request.POST.get("card") or cards.VISA
            if card not in cards.TEST_CARDS:
                raise Http404("No such test card.")
            return _see_other(simulator.complete_checkout(session_id, card=card))
        return _see_other(simulator.cancel_checkout(session_id))
    currency = str(store.price(session["price"])["currency"])
    return TemplateResponse(
        request,
        "stripe_manager/simulator/checkout.html",
        {
            "session": session,
            "product": selectors.product_for_price(session["price"]),
            "amount": from_minor(int(session["amount_total"]), currency),
            "currency": currency,
            "test_cards": cards.TEST_CARDS.items(),
        },
    )


@login_required
@require_http_methods(["GET"])
def portal(request: HttpRequest, portal_id: str) -> HttpResponse:
    """The simulated billing portal: the plan, cancel/resume, back to the site."""
    simulator = _simulator()
    session = _owned(request, simulator.portal_session(portal_id))
    return TemplateResponse(
        request,
        "stripe_manager/simulator/portal.html",
        {
            "session": session,
            "subscription": selectors.current_subscription(request.user),  # type: ignore[arg-type]
        },
    )


@login_required
@require_POST
def renew(request: HttpRequest) -> HttpResponse:
    """Advance the user's plan to its next period (the demo's clock)."""
    simulator = _simulator()
    subscription = selectors.current_subscription(request.user)  # type: ignore[arg-type]
    if subscription is None:
        messages.error(request, "You have no active plan to renew.")
    else:
        try:
            outcome = simulator.renew(subscription.stripe_subscription_id)
        except GatewayError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Simulated period end: plan {outcome}.")
    return _see_other(reverse("stripe_manager:billing"))
