"""Plan changes with a preview and a confirmation: upgrade, downgrade, cancel.

The preview says what is charged now and what happens to the credits; its
confirmation form carries a signed token naming exactly what was previewed
(user, subscription, from and to prices, and for an upgrade the proration
moment Stripe priced). The confirmed change replays that moment, so the
charge equals the preview; a token that was altered, has expired, or no longer
matches the plan changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.core import signing
from django.core.cache import cache
from django.db.models import Sum

from credits.models import CreditLot
from credits.selectors import live_lots
from stripe_manager import selectors, services
from stripe_manager.exceptions import PlanChangeError
from stripe_manager.gateway import get_gateway
from stripe_manager.models import StripeProduct, UserSubscription
from stripe_manager.money import from_minor
from users.models import CustomUser

logger = logging.getLogger(__name__)

Kind = Literal["upgrade", "downgrade", "cancel"]

# Long enough to read the page; short enough that Stripe's period has not moved on.
CONFIRM_MAX_AGE_SECONDS = 15 * 60
_SALT = "stripe_manager.plan_change"


@dataclass(frozen=True)
class PlanChangePreview:
    kind: Kind
    current: StripeProduct | None
    new: StripeProduct | None  # None for a cancellation
    amount_due: Decimal  # charged at once, in major units
    currency: str
    effective_at: datetime | None  # None: now
    plan_credits_left: Decimal  # the current plan's unspent credits
    token: str


def _plan_credits_left(user: CustomUser) -> Decimal:
    lots = live_lots(user).filter(priority=CreditLot.Priority.SUBSCRIPTION)
    total = lots.aggregate(total=Sum("remaining"))["total"]
    return total or Decimal(0)


def _sign(payload: dict[str, Any]) -> str:
    # The nonce tells two previews of the same change apart: each confirms once.
    return signing.dumps({**payload, "n": secrets.token_urlsafe(8)}, salt=_SALT)


def preview_change(*, user: CustomUser, price_id: str) -> PlanChangePreview:
    """Preview switching to ``price_id``: an upgrade priced by Stripe now, or a downgrade."""
    subscription, current, new, kind = services.plan_change_kind(user=user, price_id=price_id)
    amount, currency, proration_date = 0, new.currency, None
    if kind == "upgrade":
        priced = get_gateway().preview_upgrade(
            subscription_id=subscription.stripe_subscription_id,
            item_id=subscription.stripe_item_id,
            price_id=new.stripe_price_id,
        )
        amount, currency, proration_date = priced.amount_due, priced.currency, priced.proration_date
    token = _sign(
        {
            "u": user.pk,
            "s": subscription.stripe_subscription_id,
            "f": subscription.price_id,
            "k": kind,
            "p": new.stripe_price_id,
            "d": proration_date,
        }
    )
    return PlanChangePreview(
        kind=kind,
        current=current,
        new=new,
        amount_due=from_minor(amount, currency),
        currency=currency,
        effective_at=None if kind == "upgrade" else subscription.current_period_end,
        plan_credits_left=_plan_credits_left(user),
        token=token,
    )


def preview_cancel(*, user: CustomUser) -> PlanChangePreview:
    """Preview cancelling at period end: nothing charged, credits kept until then."""
    subscription = services.live_subscription(user)
    if subscription.cancel_at_period_end:
        raise PlanChangeError("Your plan already ends at the end of this period.")
    current = selectors.product_for_price(subscription.price_id)
    token = _sign(
        {
            "u": user.pk,
            "s": subscription.stripe_subscription_id,
            "f": subscription.price_id,
            "k": "cancel",
            "p": "",
            "d": None,
        }
    )
    return PlanChangePreview(
        kind="cancel",
        current=current,
        new=None,
        amount_due=Decimal(0),
        currency=current.currency if current else "usd",
        effective_at=subscription.current_period_end,
        plan_credits_left=_plan_credits_left(user),
        token=token,
    )


def _checked(user: CustomUser, token: str, kinds: tuple[Kind, ...]) -> dict[str, Any]:
    """The previewed change, if ``token`` is genuine, recent and still fits the plan."""
    try:
        payload: dict[str, Any] = signing.loads(token, salt=_SALT, max_age=CONFIRM_MAX_AGE_SECONDS)
    except signing.SignatureExpired as error:
        raise PlanChangeError(
            "That preview is more than 15 minutes old, so nothing was changed. "
            "Look at the change again and confirm it."
        ) from error
    except signing.BadSignature as error:
        logger.warning("plan change confirmation refused", extra={"user_id": user.pk})
        raise PlanChangeError(
            "That confirmation is not valid, so nothing was changed. "
            "Open the plan change again and confirm it."
        ) from error
    subscription: UserSubscription = services.live_subscription(user)
    if (
        payload.get("u") != user.pk
        or payload.get("k") not in kinds
        or payload.get("s") != subscription.stripe_subscription_id
        or payload.get("f") != subscription.price_id
    ):
        raise PlanChangeError(
            "Your plan changed since that preview, so nothing was changed. "
            "Look at the change again and confirm it."
        )
    return payload


@contextmanager
def _once(token: str) -> Iterator[None]:
    """Let a confirmation through once: a double click or a replay changes nothing more.

    Our plan row only follows Stripe by webhook, so until that lands it cannot
    tell that the change was made; the shared cache remembers the token instead.
    A change that fails frees the token again, so the user can retry it.
    """
    key = "stripe_manager:plan-confirmed:" + hashlib.sha256(token.encode()).hexdigest()
    if not cache.add(key, True, timeout=CONFIRM_MAX_AGE_SECONDS + 60):
        raise PlanChangeError("That change was already confirmed; see your billing page.")
    try:
        yield
    except BaseException:
        cache.delete(key)
        raise


def confirm_change(*, user: CustomUser, token: str) -> str:
    """Apply a previewed upgrade or downgrade; returns the services outcome."""
    payload = _checked(user, token, ("upgrade", "downgrade"))
    _, _, _, kind = services.plan_change_kind(user=user, price_id=str(payload["p"]))
    if kind != payload["k"]:
        raise PlanChangeError(
            "The plans' prices changed since that preview, so nothing was changed. "
            "Look at the change again and confirm it."
        )
    proration_date = payload.get("d")
    with _once(token):
        return services.subscription_change_plan(
            user=user,
            price_id=str(payload["p"]),
            proration_date=int(proration_date) if proration_date is not None else None,
        )


def confirm_cancel(*, user: CustomUser, token: str) -> None:
    _checked(user, token, ("cancel",))
    with _once(token):
        services.subscription_set_cancel(user=user, cancel=True)
