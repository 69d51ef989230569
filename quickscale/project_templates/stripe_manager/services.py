"""Billing writes started by a user: customer, checkout, portal, plan changes.

None of these grant credits: credits come from webhooks only
(``stripe_manager/webhooks.py``).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.db import transaction

from common.formatting import format_credit_count, format_credits
from stripe_manager import auto_top_up, customer_sync, selectors
from stripe_manager.exceptions import InvalidPurchase, PlanChangeError
from stripe_manager.gateway import CheckoutSession, get_gateway
from stripe_manager.models import StripeCustomer, StripeProduct, UserSubscription
from users.models import CustomUser

logger = logging.getLogger(__name__)


def customer_get_or_create(user: CustomUser) -> StripeCustomer:
    """Return the user's Stripe customer, creating it once even under double-clicks.

    The user's row is locked while the customer is created, so a second
    request waits and then finds the first one's customer; Stripe's
    idempotency key guards the remote side as well.
    """
    existing = StripeCustomer.objects.filter(user=user).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        CustomUser.objects.select_for_update().filter(pk=user.pk).first()
        existing = StripeCustomer.objects.filter(user=user).first()
        if existing is not None:
            return existing
        customer_id = get_gateway().create_customer(
            email=user.email, user_id=user.pk, idempotency_key=f"customer-for-user-{user.pk}"
        )
        customer = StripeCustomer.objects.create(user=user, stripe_customer_id=customer_id)
        # The customer starts with the email only; the profile's name follows by task.
        customer_sync.customer_created(user.pk)
    logger.info("stripe customer created", extra={"user_id": user.pk})
    return customer


def _sellable(price_id: str) -> StripeProduct:
    product = selectors.active_product(price_id)
    if product is None:
        raise InvalidPurchase(
            "That product is not available (anymore). Pick one from the pricing page."
        )
    return product


def purchase_credits_total(product: StripeProduct, quantity: int) -> Decimal:
    """Validate a one-time purchase's quantity and return the credits it buys."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise InvalidPurchase("Quantity must be a whole number of at least 1.")
    total = product.credit_amount * quantity
    low, high = settings.MIN_CREDIT_PURCHASE, settings.MAX_CREDIT_PURCHASE
    if not low <= total <= high:
        raise InvalidPurchase(
            f"One purchase must be between {format_credits(low)} and "
            f"{format_credit_count(high)}; {quantity} x {format_credits(product.credit_amount)} "
            f"is {format_credits(total)}. Change the quantity."
        )
    return total


def checkout_start(
    *, user: CustomUser, price_id: str, quantity: int, success_url: str, cancel_url: str
) -> CheckoutSession:
    """Validate a purchase or subscription and open a Checkout Session for ``user``."""
    product = _sellable(price_id)
    save_card = False
    if product.is_one_time:
        credits = purchase_credits_total(product, quantity)
        mode = "payment"
        # Opted in to auto top-up: keep the card for its off-session charges.
        save_card = auto_top_up.saves_card(user)
    else:
        if quantity != 1:
            raise InvalidPurchase("A plan is bought one at a time (quantity 1).")
        if selectors.current_subscription(user) is not None:
            raise InvalidPurchase(
                "You already have a plan. Change it on the pricing page instead of buying another."
            )
        credits = product.credit_amount
        mode = "subscription"
    trial_days = product.trial_days if selectors.trial_available(user, product) else None
    customer = customer_get_or_create(user)
    session = get_gateway().create_checkout_session(
        customer_id=customer.stripe_customer_id,
        price_id=product.stripe_price_id,
        quantity=quantity,
        mode=mode,  # type: ignore[arg-type]
        success_url=success_url,
        cancel_url=cancel_url,
        metadata={
            "user_id": str(user.pk),
            "price_id": product.stripe_price_id,
            "quantity": str(quantity),
            "credits": str(credits),
            **({auto_top_up.SAVE_CARD_KEY: "1"} if save_card else {}),
        },
        trial_days=trial_days,
        save_card=save_card,
    )
    logger.info(
        "checkout started",
        extra={
            "user_id": user.pk,
            "price_id": price_id,
            "quantity": quantity,
            "mode": mode,
            "trial_days": trial_days,
        },
    )
    return session


def portal_url(*, user: CustomUser, return_url: str) -> str:
    """Open Stripe's Billing Portal for ``user``."""
    customer = customer_get_or_create(user)
    return get_gateway().create_portal_session(
        customer_id=customer.stripe_customer_id, return_url=return_url
    )


def live_subscription(user: CustomUser) -> UserSubscription:
    """The user's current plan; ``PlanChangeError`` when there is none."""
    subscription = selectors.current_subscription(user)
    if subscription is None:
        raise PlanChangeError("You have no active plan. Subscribe on the pricing page first.")
    return subscription


def plan_change_kind(
    *, user: CustomUser, price_id: str
) -> tuple[UserSubscription, StripeProduct | None, StripeProduct, Literal["upgrade", "downgrade"]]:
    """The user's plan, its product, the plan ``price_id`` sells, and which way the change goes.

    A dearer plan (per month) is an upgrade, now; any other is a downgrade at period end.
    """
    subscription = live_subscription(user)
    new = _sellable(price_id)
    if not new.is_subscription:
        raise PlanChangeError("That product is a credit pack, not a plan.")
    if new.stripe_price_id == subscription.price_id:
        raise PlanChangeError("You are already on that plan.")
    current = selectors.product_for_price(subscription.price_id)
    upgrade = current is None or new.monthly_price > current.monthly_price
    return subscription, current, new, "upgrade" if upgrade else "downgrade"


def subscription_change_plan(
    *, user: CustomUser, price_id: str, proration_date: int | None = None
) -> str:
    """Upgrade now (prorated, invoiced at once) or downgrade at period end.

    Returns ``"upgraded"`` or ``"downgrade_scheduled"``. ``proration_date`` (from
    the previewed change) makes Stripe prorate as of the preview. The credits
    follow by webhook: the upgrade's proration invoice grants the new plan's
    credits, the renewal after a downgrade grants the lower plan's.
    """
    subscription, _, new, kind = plan_change_kind(user=user, price_id=price_id)
    gateway = get_gateway()
    if kind == "upgrade":
        gateway.upgrade_subscription(
            subscription_id=subscription.stripe_subscription_id,
            item_id=subscription.stripe_item_id,
            price_id=new.stripe_price_id,
            proration_date=proration_date,
        )
        UserSubscription.objects.filter(pk=subscription.pk).update(
            scheduled_price_id="", cancel_at_period_end=False
        )
        outcome = "upgraded"
    else:
        gateway.schedule_downgrade(
            subscription_id=subscription.stripe_subscription_id, price_id=new.stripe_price_id
        )
        UserSubscription.objects.filter(pk=subscription.pk).update(
            scheduled_price_id=new.stripe_price_id
        )
        outcome = "downgrade_scheduled"
    logger.info("plan change", extra={"user_id": user.pk, "price_id": price_id, "outcome": outcome})
    return outcome


def subscription_set_cancel(*, user: CustomUser, cancel: bool) -> None:
    """Cancel the plan at period end (``cancel=True``) or resume it."""
    subscription = live_subscription(user)
    if subscription.cancel_at_period_end == cancel:
        raise PlanChangeError(
            "Your plan already ends at the end of this period."
            if cancel
            else "Your plan is not set to end; nothing to resume."
        )
    get_gateway().set_cancel_at_period_end(
        subscription_id=subscription.stripe_subscription_id, cancel=cancel
    )
    UserSubscription.objects.filter(pk=subscription.pk).update(cancel_at_period_end=cancel)
    logger.info("plan cancel set", extra={"user_id": user.pk, "cancel": cancel})
