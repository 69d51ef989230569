"""Billing reads: the catalog, a user's plan and payments."""

from __future__ import annotations

from django.db.models import QuerySet

from stripe_manager.models import Payment, StripeProduct, UserSubscription
from users.models import CustomUser


def active_product(price_id: str) -> StripeProduct | None:
    """The active catalog row for ``price_id``, or None (unknown or inactive)."""
    if not isinstance(price_id, str) or not price_id:
        return None
    return StripeProduct.objects.filter(stripe_price_id=price_id, active=True).first()


def product_for_price(price_id: str) -> StripeProduct | None:
    """The catalog row for ``price_id``, active or not."""
    return StripeProduct.objects.filter(stripe_price_id=price_id).first() if price_id else None


def plans() -> QuerySet[StripeProduct]:
    return StripeProduct.objects.filter(active=True).exclude(interval=StripeProduct.Interval.NONE)


def credit_packs() -> QuerySet[StripeProduct]:
    return StripeProduct.objects.filter(active=True, interval=StripeProduct.Interval.NONE)


def current_subscription(user: CustomUser) -> UserSubscription | None:
    """The user's plan in use (active, trialing or past due), newest first."""
    return (
        UserSubscription.objects.filter(user=user, status__in=UserSubscription.LIVE)
        .select_related("product")
        .first()
    )


def payments(user: CustomUser) -> QuerySet[Payment]:
    return Payment.objects.filter(user=user).select_related("product")


def payment_for_receipt(user: CustomUser, receipt_number: str) -> Payment | None:
    """The user's own payment with that receipt number (None for anyone else's)."""
    return payments(user).filter(receipt_number=receipt_number).first()
