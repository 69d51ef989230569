"""Auto top-up: below a balance the user chose, buy a credit pack with their saved card.

Design overview
---------------
Settings (``auto_top_up_save``). A user opts in on the billing page with a
one-time pack on sale and a threshold above 0 and at most the pack's credits
(so one top-up always lifts the balance back above it). While a settings row
exists, credit checkouts save the card (``setup_future_usage=off_session``);
the card arrives with the checkout's ``payment_intent.succeeded``
(``card_saved``).

Trigger (``on_available_lowered``). The ledger tells ``credits.signals``'s
listeners after a spend commits, with the available balance it left. One
indexed query asks whether the user is opted in, has a card and is below the
threshold; only then, under a lock on the settings row, is a charge row
written, unless one is in flight already (a partial unique index allows one
per user, whatever the code does). Its number is the settings' ``sequence`` + 1,
and its idempotency key ``auto-top-up:<user>:<number>`` goes to Stripe: one
threshold crossing is one charge, however many concurrent spends cross it. The
task is queued with the row. Errors are logged, never raised: the spend that
crossed the threshold committed before and is never failed by its top-up.

Charge (``auto_top_up_charge``, the task body). The pack must still be on sale
(else auto top-up is turned off and the user told), the user still below the
threshold (else the charge is skipped). The off-session PaymentIntent is
created with the row locked; a card that needs authentication or is declined
turns auto top-up off, emails the user a link to pay on-session (their billing
page, which starts a normal checkout of the pack) and leaves the row, with
Stripe's reason, for staff. Another gateway error is retried with the same key.

A charge whose task was lost stays queued; the periodic ``sweep_stalled_charges``
sends its task again (the same key, so Stripe charges once).

Credits (``top_up_paid``) come from the intent's ``payment_intent.succeeded``
only, which names the charge in its metadata: a ``Payment`` row and a ledger
grant keyed by the intent id, once, however often Stripe sends the event.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from common.email import RenderedEmail, absolute_url, render_templated
from common.mail_tasks import email_queue
from common.task_queue import enqueue_with_transaction
from credits import ledger
from credits.models import CreditLot
from stripe_manager import emails, selectors
from stripe_manager.exceptions import InvalidAutoTopUp
from stripe_manager.gateway import CardRefused, GatewayError, get_gateway, payments_enabled
from stripe_manager.models import AutoTopUp, AutoTopUpCharge, Payment, StripeCustomer
from users.models import CustomUser

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
# Metadata keys on Stripe objects: the charge a PaymentIntent pays, a checkout saving the card.
CHARGE_KEY = "auto_top_up"
SAVE_CARD_KEY = "auto_top_up_card"
# A gateway failure that is not the card's answer is tried again this many times in all.
MAX_TRIES = 5
RETRY_DELAY = timedelta(minutes=1)
# A charge queued this long ago has lost its task (a worker died, Redis lost it).
STALL = timedelta(minutes=10)

Status = AutoTopUpCharge.Status


# --------------------------------------------------------------------------- settings


def auto_top_up_save(
    *, user: CustomUser, enabled: bool, price_id: str = "", threshold: Any = None
) -> AutoTopUp | None:
    """Turn auto top-up on with ``price_id`` and ``threshold``, or off (``enabled=False``).

    Raises ``InvalidAutoTopUp`` and changes nothing when the pack is not a
    one-time pack on sale or the threshold is not above 0 and at most the
    pack's credits. Turning it off keeps the pack, threshold and card for later.
    """
    if not enabled:
        AutoTopUp.objects.filter(user=user).update(enabled=False, updated_at=timezone.now())
        logger.info("auto top-up turned off", extra={"user_id": user.pk})
        return AutoTopUp.objects.filter(user=user).first()
    product = selectors.active_product(price_id)
    if product is None or not product.is_one_time:
        raise InvalidAutoTopUp(
            "That credit pack is not on sale (anymore). Pick one of the packs listed."
        )
    value = _threshold(threshold, limit=product.credit_amount)
    row, _ = AutoTopUp.objects.update_or_create(
        user=user, defaults={"enabled": True, "product": product, "threshold": value}
    )
    logger.info(
        "auto top-up turned on",
        extra={"user_id": user.pk, "price_id": product.stripe_price_id, "threshold": str(value)},
    )
    return row


def _threshold(value: Any, *, limit: Decimal) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        number = Decimal("NaN")
    if isinstance(value, float | bool) or not number.is_finite() or number <= 0:
        raise InvalidAutoTopUp("The threshold must be a number of credits above 0.")
    if number != number.quantize(CENT):
        raise InvalidAutoTopUp("The threshold can have at most 2 decimals.")
    if number > limit:
        raise InvalidAutoTopUp(
            f"The threshold must be at most the pack's {limit.normalize():f} credits, so that "
            "one top-up lifts your balance above it. Lower it or pick a larger pack."
        )
    return number


def saves_card(user: CustomUser) -> bool:
    """Whether a credit checkout of ``user`` keeps the card (they have opted in once)."""
    return AutoTopUp.objects.filter(user=user).exists()


def card_saved(*, user: CustomUser, payment_method_id: str) -> None:
    """Remember the card a checkout saved for off-session charges (``payment_intent.succeeded``)."""
    saved = AutoTopUp.objects.filter(user=user).update(
        payment_method_id=payment_method_id, updated_at=timezone.now()
    )
    if saved:
        logger.info("auto top-up card saved", extra={"user_id": user.pk})


# --------------------------------------------------------------------------- trigger


def on_available_lowered(sender: Any, *, user_id: int, available: Decimal, **kwargs: Any) -> None:
    """``credits.signals.available_lowered`` receiver: start a top-up when one is due.

    Runs after the spend committed; whatever fails here is logged and swallowed.
    """
    if not payments_enabled():
        return
    try:
        auto_top_up_trigger(user_id=user_id, available=available)
    except Exception:
        logger.exception("auto top-up could not start", extra={"user_id": user_id})


def auto_top_up_trigger(*, user_id: int, available: Decimal) -> AutoTopUpCharge | None:
    """Queue one top-up when ``user_id`` is opted in, below the threshold and has none in flight.

    Returns the new charge, or None when none is due (or one is in flight).
    """
    due = AutoTopUp.objects.filter(user_id=user_id, enabled=True, threshold__gt=available).exclude(
        payment_method_id=""
    )
    if not due.exists():  # the one query a spend of a user not opted in costs
        return None
    with transaction.atomic():
        setting = due.select_for_update(of=("self",)).select_related("product").first()
        if setting is None:
            return None
        in_flight = AutoTopUpCharge.objects.filter(
            user_id=user_id, status__in=AutoTopUpCharge.IN_FLIGHT
        )
        if in_flight.exists():
            return None
        setting.sequence += 1
        setting.save(update_fields=["sequence"])
        product = setting.product
        charge = AutoTopUpCharge.objects.create(
            user_id=user_id,
            sequence=setting.sequence,
            product=product,
            amount=product.price,
            currency=product.currency,
            credits=product.credit_amount,
            idempotency_key=f"auto-top-up:{user_id}:{setting.sequence}",
        )
        _enqueue_with_transaction(charge.pk)
    logger.info(
        "auto top-up queued",
        extra={"user_id": user_id, "charge": charge.idempotency_key, "available": str(available)},
    )
    return charge


def _enqueue_with_transaction(charge_id: int, *, delay: timedelta | None = None) -> None:
    """Queue the charge's task with the current transaction (``common.task_queue``); one lost
    after the commit on Redis is sent again by ``sweep_auto_top_ups``."""
    from stripe_manager.auto_top_up_tasks import charge_auto_top_up

    sender = charge_auto_top_up
    if delay is not None:
        sender = sender.using(run_after=timezone.now() + delay)
    enqueue_with_transaction(sender, charge_id)


# --------------------------------------------------------------------------- charge


def auto_top_up_charge(charge_id: int) -> str:
    """Charge the saved card for queued top-up ``charge_id``; return the charge's status.

    A charge no longer queued (a repeated task) is left alone.
    """
    with transaction.atomic():
        charge = (
            AutoTopUpCharge.objects.select_for_update(of=("self",))
            .select_related("product")
            .filter(pk=charge_id)
            .first()
        )
        if charge is None or charge.status != Status.QUEUED:
            return charge.status if charge else "missing"
        setting = AutoTopUp.objects.select_for_update().get(user_id=charge.user_id)
        product = selectors.active_product(charge.product.stripe_price_id)
        if not setting.enabled or setting.product_id != charge.product_id:
            return _finish(charge, Status.SKIPPED, "Auto top-up was turned off or changed.")
        if product is None or not product.is_one_time:
            return _refuse(charge, setting, Status.PACK_UNAVAILABLE, "The pack is not on sale.")
        user = CustomUser.objects.get(pk=charge.user_id)
        if ledger.balance(user).available >= setting.threshold:
            return _finish(charge, Status.SKIPPED, "The balance is above the threshold again.")
        customer = StripeCustomer.objects.filter(user_id=charge.user_id).first()
        if customer is None or not setting.payment_method_id:
            return _refuse(charge, setting, Status.FAILED, "No saved card.")
        charge.tries += 1
        try:
            paid = get_gateway().charge_saved_card(
                customer_id=customer.stripe_customer_id,
                payment_method_id=setting.payment_method_id,
                amount=int(charge.amount * 100),
                currency=charge.currency,
                description=f"Auto top-up: {product.name}",
                idempotency_key=charge.idempotency_key,
                metadata={
                    CHARGE_KEY: charge.idempotency_key,
                    "user_id": str(charge.user_id),
                    "price_id": product.stripe_price_id,
                    "credits": str(charge.credits),
                },
            )
        except CardRefused as error:
            charge.stripe_payment_intent_id = error.payment_intent_id
            status = (
                Status.AUTHENTICATION_REQUIRED if error.needs_authentication else Status.DECLINED
            )
            return _refuse(charge, setting, status, f"{error.code}: {error}")
        except GatewayError as error:
            if charge.tries >= MAX_TRIES:
                return _refuse(charge, setting, Status.FAILED, str(error))
            delay = RETRY_DELAY * 2 ** (charge.tries - 1)
            charge.error = str(error)
            charge.enqueued_at = timezone.now() + delay
            charge.save(update_fields=["tries", "error", "enqueued_at"])
            _enqueue_with_transaction(charge.pk, delay=delay)
            logger.warning(
                "auto top-up charge will be retried",
                extra={"charge": charge.idempotency_key, "tries": charge.tries},
            )
            return str(charge.status)
        charge.status = Status.CHARGED
        charge.stripe_payment_intent_id = paid.payment_intent_id
        charge.error = ""
        charge.save(update_fields=["status", "stripe_payment_intent_id", "tries", "error"])
    logger.info(
        "auto top-up charged",
        extra={"charge": charge.idempotency_key, "payment_intent": paid.payment_intent_id},
    )
    return str(charge.status)


def sweep_stalled_charges(*, now: datetime | None = None) -> int:
    """Send the task of every charge queued for longer than ``STALL`` again; return how many.

    A duplicate task charges nothing twice: the charge is locked and must still
    be queued, and Stripe answers a repeated idempotency key with the first intent.
    """
    moment = now or timezone.now()
    stalled = list(
        AutoTopUpCharge.objects.filter(
            status=Status.QUEUED, enqueued_at__lt=moment - STALL
        ).values_list("pk", flat=True)[:500]
    )
    for charge_id in stalled:
        with transaction.atomic():
            AutoTopUpCharge.objects.filter(pk=charge_id).update(enqueued_at=moment)
            _enqueue_with_transaction(charge_id)
    if stalled:
        logger.warning("stalled auto top-ups sent again", extra={"charges": stalled})
    return len(stalled)


def _finish(charge: AutoTopUpCharge, status: str, error: str = "") -> str:
    charge.status = status
    charge.error = error
    charge.finished_at = timezone.now()
    charge.save(
        update_fields=["status", "error", "finished_at", "tries", "stripe_payment_intent_id"]
    )
    return status


def _refuse(charge: AutoTopUpCharge, setting: AutoTopUp, status: str, error: str) -> str:
    """End ``charge`` as refused: auto top-up off, the user emailed a link to pay themselves."""
    _finish(charge, status, error)
    setting.enabled = False
    setting.save(update_fields=["enabled", "updated_at"])
    email_queue(
        auto_top_up_refused_email, key=f"auto_top_up_refused:{charge.pk}", charge_id=charge.pk
    )
    logger.warning(
        "auto top-up refused; turned off",
        extra={"user_id": charge.user_id, "charge": charge.idempotency_key, "status": status},
    )
    return status


# --------------------------------------------------------------------------- credits


def top_up_paid(*, user: CustomUser, intent: dict[str, Any]) -> None:
    """Grant a paid top-up's credits once (``payment_intent.succeeded`` of our charge)."""
    key = str((intent.get("metadata") or {}).get(CHARGE_KEY, ""))
    charge = (
        AutoTopUpCharge.objects.select_for_update(of=("self",))
        .select_related("product")
        .filter(idempotency_key=key, user=user)
        .first()
    )
    if charge is None:
        logger.warning("paid top-up not found", extra={"charge": key, "user_id": user.pk})
        return
    if charge.payment_id is not None:
        return  # granted already
    intent_id = str(intent["id"])
    payment = Payment.objects.create(
        user=user,
        product=charge.product,
        kind=Payment.Kind.CREDIT_PURCHASE,
        status=Payment.Status.SUCCEEDED,
        amount=Decimal(int(intent.get("amount_received") or intent.get("amount") or 0)) / 100,
        currency=str(intent.get("currency") or charge.currency),
        credits=charge.credits,
        credit_reference=intent_id,
        price_id=charge.product.stripe_price_id,
        description=f"Auto top-up: 1 x {charge.product.name}",
        stripe_payment_intent_id=intent_id,
    )
    ledger.grant(
        user,
        charge.credits,
        source=CreditLot.Source.PURCHASE,
        reference=intent_id,
        description=f"Auto top-up: {charge.product.name}",
    )
    charge.payment = payment
    charge.status = Status.SUCCEEDED
    charge.stripe_payment_intent_id = intent_id
    charge.error = ""
    charge.finished_at = timezone.now()
    charge.save(
        update_fields=["payment", "status", "stripe_payment_intent_id", "error", "finished_at"]
    )
    emails.queue_receipt(payment.pk)
    logger.info(
        "auto top-up granted",
        extra={"user_id": user.pk, "charge": key, "credits": str(charge.credits)},
    )


# --------------------------------------------------------------------------- email

_REASONS = {
    Status.AUTHENTICATION_REQUIRED: "your bank asked you to confirm the payment yourself",
    Status.DECLINED: "your card was declined",
    Status.PACK_UNAVAILABLE: "the credit pack you chose is no longer on sale",
    Status.FAILED: "the payment could not be made",
}


def auto_top_up_refused_email(charge_id: int) -> RenderedEmail | None:
    """Tell the user their automatic top-up failed, that it is off, and where to pay now."""
    charge = AutoTopUpCharge.objects.select_related("user", "product").filter(pk=charge_id).first()
    if charge is None or not charge.user.is_active or not charge.user.email:
        return None
    return render_templated(
        "stripe_manager/emails/auto_top_up_refused",
        to=charge.user.email,
        subject="Your automatic credit top-up failed",
        context={
            "charge": charge,
            "threshold": AutoTopUp.objects.filter(user=charge.user)
            .values_list("threshold", flat=True)
            .first(),
            "reason": _REASONS.get(Status(charge.status), "the payment could not be made"),
            "pack_on_sale": selectors.active_product(charge.product.stripe_price_id) is not None,
            "pay_url": absolute_url(reverse("stripe_manager:billing")) + "#auto-top-up",
        },
    )


# --------------------------------------------------------------------------- reads


def auto_top_up_for(user: CustomUser) -> AutoTopUp | None:
    """The user's auto top-up settings (with the pack), or None if they never opted in."""
    return AutoTopUp.objects.select_related("product").filter(user=user).first()


def last_charge(user: CustomUser) -> AutoTopUpCharge | None:
    """The user's latest automatic top-up, to show how it went."""
    return AutoTopUpCharge.objects.select_related("product").filter(user=user).first()
