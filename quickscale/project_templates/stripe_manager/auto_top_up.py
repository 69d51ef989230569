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
listeners after a spend commits (a consume, or a settle that charged; never a
hold, whose estimate is often several times the real cost), with the
available balance it left. One indexed query asks whether the user is opted
in, has a card and is below the threshold; only then, under a lock on the
settings row and if the credits the user owns (``total``) are below the
threshold, is a charge row written, unless one is in flight already (a partial
unique index allows one per user, whatever the code does). Its number is the
settings' ``sequence`` + 1, and its idempotency key
``auto-top-up:<user>:<number>`` goes to Stripe: one threshold crossing is one
charge, however many concurrent spends cross it. The
task is queued with the row. Errors are logged, never raised: the spend that
crossed the threshold committed before and is never failed by its top-up.

Charge (``auto_top_up_charge``, the task body). The account must still be
active (a deleted one is skipped; deletion also turns auto top-up off and
forgets the card, ``on_account_deleted``), the pack still on sale and at least
the threshold (else auto top-up is turned off and the user told), the user
still below the threshold (else the charge is skipped). The row is then marked
charging and committed; the off-session PaymentIntent is created outside any
transaction, and its answer recorded in a short one. A card that needs
authentication or is declined turns auto top-up off, emails the user a link to
pay on-session (their billing page, which starts a normal checkout of the
pack) and leaves the row, with Stripe's reason, for staff. Another gateway
error is retried with the same key.

Credits: an intent that comes back ``succeeded`` is granted by the task at
once; one still ``processing`` stays charged until its
``payment_intent.succeeded`` (``top_up_paid``) or ``payment_intent.payment_failed``
(``top_up_failed``: refused as a decline). Every grant is one ``Payment`` row
and a ledger grant keyed by the intent id, under the charge's row lock, once,
whichever of the task, the webhook and the sweep comes first.

The periodic ``sweep_stalled_charges`` sends again a charge whose task was lost
(queued) or whose worker died mid-call (charging), with the same key so Stripe
charges once, and asks Stripe about an intent charged long ago whose webhook
never came.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from common.email import RenderedEmail, absolute_url, render_templated
from common.mail_tasks import email_queue
from common.task_queue import enqueue_with_transaction
from credits import ledger
from credits.models import CreditLot
from stripe_manager import emails, selectors
from stripe_manager.exceptions import InvalidAutoTopUp, MissingPrerequisite
from stripe_manager.gateway import (
    CardRefused,
    GatewayError,
    OffSessionPayment,
    get_gateway,
    payments_enabled,
)
from stripe_manager.models import AutoTopUp, AutoTopUpCharge, Payment, StripeCustomer
from stripe_manager.money import AmountError, from_minor, to_minor
from users.models import CustomUser
from users.signals import account_deleted

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
# Metadata keys on Stripe objects: the charge a PaymentIntent pays, a checkout saving the card.
CHARGE_KEY = "auto_top_up"
SAVE_CARD_KEY = "auto_top_up_card"
# A gateway failure that is not the card's answer is tried again this many times in all.
MAX_TRIES = 5
RETRY_DELAY = timedelta(minutes=1)
# A charge queued this long ago has lost its task (a worker died, Redis lost it); one
# charging this long ago lost its worker during the Stripe call.
STALL = timedelta(minutes=10)
# An intent still ``processing`` this long after the charge is looked up at Stripe by the
# sweep, in case its payment_intent.succeeded/payment_failed never arrives.
CONFIRM_WAIT = timedelta(minutes=30)

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


def on_available_lowered(
    sender: Any, *, user_id: int, available: Decimal | None, **kwargs: Any
) -> None:
    """``credits.signals.available_lowered`` receiver: start a top-up when one is due.

    Runs after the spend committed; whatever fails here is logged and swallowed.
    """
    if not payments_enabled():
        return
    try:
        auto_top_up_trigger(user_id=user_id, available=available)
    except Exception:
        logger.exception("auto top-up could not start", extra={"user_id": user_id})


# auto_top_up_trigger's first test, the ORM filter below it as SQL: opted in, with a
# saved card, and (when the spend says what it left available) a threshold above it.
_DUE_SQL = (
    f"SELECT EXISTS (SELECT 1 FROM {AutoTopUp._meta.db_table}"
    " WHERE user_id = %s AND enabled AND payment_method_id <> ''"
    " AND (%s::numeric IS NULL OR threshold > %s::numeric))"
)


def auto_top_up_trigger(*, user_id: int, available: Decimal | None) -> AutoTopUpCharge | None:
    """Queue one top-up when ``user_id`` is opted in, below the threshold and has none in flight.

    ``available`` is what the spend left available (None: not known, e.g. a settle
    within its hold). Owning fewer credits than the threshold is what makes a top-up
    due: ``total``, not what open holds (estimates) leave available. As total is
    at least available, a threshold not above ``available`` rules a top-up out
    without reading the balance. Returns the new charge, or None when none is due
    (or one is in flight).
    """
    # The one query a spend of a user not opted in costs, written out: every charged
    # call runs it, and building it with the ORM took longer than running it.
    with connection.cursor() as cursor:
        cursor.execute(_DUE_SQL, [user_id, available, available])
        (is_due,) = cursor.fetchone()
    if not is_due:
        return None
    due = AutoTopUp.objects.filter(user_id=user_id, enabled=True).exclude(payment_method_id="")
    if available is not None:
        due = due.filter(threshold__gt=available)
    with transaction.atomic():
        setting = due.select_for_update(of=("self",)).select_related("product", "user").first()
        if setting is None:
            return None
        if ledger.balance(setting.user).total >= setting.threshold:
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
        extra={"user_id": user_id, "charge": charge.idempotency_key},
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


@dataclass(frozen=True)
class _ChargeRequest:
    """What step 2 of a charge sends to Stripe, read while the row was locked."""

    customer_id: str
    payment_method_id: str
    amount: int
    currency: str
    description: str
    idempotency_key: str
    metadata: dict[str, str]


def auto_top_up_charge(charge_id: int) -> str:
    """Charge the saved card for queued top-up ``charge_id``; return the charge's status.

    Three steps, so that no transaction or row lock is held while Stripe answers
    (a spend's trigger and the billing page would wait on them): lock the row,
    check it is still due and mark it charging, commit; ask Stripe, outside any
    transaction; record the answer in a short transaction of its own. The
    idempotency key makes a repeated request (a retry, the sweep after a worker
    died mid-call) one charge. A charge no longer queued (a repeated task) is
    left alone.
    """
    request = _start_charge(charge_id)
    if isinstance(request, str):
        return request
    try:
        paid = get_gateway().charge_saved_card(
            customer_id=request.customer_id,
            payment_method_id=request.payment_method_id,
            amount=request.amount,
            currency=request.currency,
            description=request.description,
            idempotency_key=request.idempotency_key,
            metadata=request.metadata,
        )
    except CardRefused as error:
        return _record_refusal(charge_id, error)
    except GatewayError as error:
        return _record_gateway_error(charge_id, error)
    return _record_charged(charge_id, paid)


def _start_charge(charge_id: int) -> _ChargeRequest | str:
    """Step 1: check the queued charge is still wanted; mark it charging and return the
    request, or end it and return its status."""
    with transaction.atomic():
        charge = _locked_charge(charge_id)
        if charge is None or charge.status != Status.QUEUED:
            return charge.status if charge else "missing"
        setting = AutoTopUp.objects.select_for_update().get(user_id=charge.user_id)
        user = CustomUser.objects.get(pk=charge.user_id)
        if not user.is_active:  # deleted or deactivated meanwhile: never charge it
            setting.enabled = False
            setting.save(update_fields=["enabled", "updated_at"])
            return _finish(charge, Status.SKIPPED, "The account is inactive.")
        if not setting.enabled or setting.product_id != charge.product_id:
            return _finish(charge, Status.SKIPPED, "Auto top-up was turned off or changed.")
        product = selectors.active_product(charge.product.stripe_price_id)
        if product is None or not product.is_one_time:
            return _refuse(charge, setting, Status.PACK_UNAVAILABLE, "The pack is not on sale.")
        if setting.threshold > product.credit_amount:
            # A catalog sync shrank the pack since the threshold was saved: one top-up
            # would leave the balance below it, and every spend would buy another.
            return _refuse(
                charge,
                setting,
                Status.PACK_TOO_SMALL,
                f"The pack gives {product.credit_amount} credits, "
                f"below the threshold of {setting.threshold}.",
            )
        # Holds are estimates (often several times the real cost): what decides is the
        # credits the user owns, not what open holds leave available.
        if ledger.balance(user).total >= setting.threshold:
            return _finish(charge, Status.SKIPPED, "The balance is above the threshold again.")
        customer = StripeCustomer.objects.filter(user_id=charge.user_id).first()
        if customer is None or not setting.payment_method_id:
            return _refuse(charge, setting, Status.FAILED, "No saved card.")
        try:
            amount = to_minor(charge.amount, charge.currency)
        except AmountError as error:  # a price Stripe cannot be asked for: never retried
            return _refuse(charge, setting, Status.FAILED, str(error))
        charge.tries += 1
        charge.status = Status.CHARGING
        charge.enqueued_at = timezone.now()
        charge.save(update_fields=["tries", "status", "enqueued_at"])
        return _ChargeRequest(
            customer_id=customer.stripe_customer_id,
            payment_method_id=setting.payment_method_id,
            amount=amount,
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


def _locked_charge(charge_id: int) -> AutoTopUpCharge | None:
    return (
        AutoTopUpCharge.objects.select_for_update(of=("self",))
        .select_related("product")
        .filter(pk=charge_id)
        .first()
    )


def _record_refusal(charge_id: int, error: CardRefused) -> str:
    """Step 3 of a card that needs authentication or was declined."""
    with transaction.atomic():
        charge = _locked_charge(charge_id)
        if charge is None or charge.status != Status.CHARGING:
            return charge.status if charge else "missing"  # a webhook recorded it first
        setting = AutoTopUp.objects.select_for_update().get(user_id=charge.user_id)
        charge.stripe_payment_intent_id = error.payment_intent_id
        status = Status.AUTHENTICATION_REQUIRED if error.needs_authentication else Status.DECLINED
        return _refuse(charge, setting, status, f"{error.code}: {error}")


def _record_gateway_error(charge_id: int, error: GatewayError) -> str:
    """Step 3 of a failure that is not the card's answer: queue it again (same key), or
    give up after ``MAX_TRIES``."""
    with transaction.atomic():
        charge = _locked_charge(charge_id)
        if charge is None or charge.status != Status.CHARGING:
            return charge.status if charge else "missing"
        if charge.tries >= MAX_TRIES:
            setting = AutoTopUp.objects.select_for_update().get(user_id=charge.user_id)
            return _refuse(charge, setting, Status.FAILED, str(error))
        delay = RETRY_DELAY * 2 ** (charge.tries - 1)
        charge.status = Status.QUEUED
        charge.error = str(error)
        charge.enqueued_at = timezone.now() + delay
        charge.save(update_fields=["status", "error", "enqueued_at"])
        _enqueue_with_transaction(charge.pk, delay=delay)
    logger.warning(
        "auto top-up charge will be retried",
        extra={"charge": charge.idempotency_key, "tries": charge.tries},
    )
    return str(charge.status)


def _record_charged(charge_id: int, paid: OffSessionPayment) -> str:
    """Step 3 of an intent Stripe accepted: grant now if it succeeded (its webhook may be
    late or lost), else wait for ``payment_intent.succeeded``/``payment_failed`` (or
    the sweep) with the charge in flight."""
    with transaction.atomic():
        charge = _locked_charge(charge_id)
        if charge is None or charge.status != Status.CHARGING:
            return charge.status if charge else "missing"  # its webhook came first
        charge.stripe_payment_intent_id = paid.payment_intent_id
        charge.error = ""
        if paid.status == "succeeded":
            _grant(charge, intent_id=paid.payment_intent_id, amount=charge.amount)
        else:
            charge.status = Status.CHARGED
            charge.enqueued_at = timezone.now()
            charge.save(
                update_fields=["status", "stripe_payment_intent_id", "error", "enqueued_at"]
            )
    logger.info(
        "auto top-up charged",
        extra={
            "charge": charge.idempotency_key,
            "payment_intent": paid.payment_intent_id,
            "intent_status": paid.status,
        },
    )
    return str(charge.status)


def sweep_stalled_charges(*, now: datetime | None = None) -> int:
    """Move on every charge stuck in flight; return how many it acted on.

    - Queued for longer than ``STALL``: its task was lost; send it again.
    - Charging for longer than ``STALL``: the worker died while Stripe answered;
      queue it again (the same idempotency key: Stripe charges once).
    - Charged (``processing``) for longer than ``CONFIRM_WAIT``: ask Stripe how the
      intent ended, in case its webhook never came; grant it, or refuse it.

    A duplicate task charges nothing twice: the charge is locked and must still
    be queued, and Stripe answers a repeated idempotency key with the first intent.
    """
    moment = now or timezone.now()
    stalled = list(
        AutoTopUpCharge.objects.filter(
            status__in=(Status.QUEUED, Status.CHARGING), enqueued_at__lt=moment - STALL
        ).values_list("pk", flat=True)[:500]
    )
    for charge_id in stalled:
        with transaction.atomic():
            AutoTopUpCharge.objects.filter(
                pk=charge_id, status__in=(Status.QUEUED, Status.CHARGING)
            ).update(status=Status.QUEUED, enqueued_at=moment)
            _enqueue_with_transaction(charge_id)
    if stalled:
        logger.warning("stalled auto top-ups sent again", extra={"charges": stalled})
    unconfirmed = list(
        AutoTopUpCharge.objects.filter(
            status=Status.CHARGED, enqueued_at__lt=moment - CONFIRM_WAIT
        ).values_list("pk", "stripe_payment_intent_id")[:100]
    )
    settled = sum(_reconcile(pk, intent_id) for pk, intent_id in unconfirmed)
    return len(stalled) + settled


def _reconcile(charge_id: int, intent_id: str) -> bool:
    """Ask Stripe how a charged intent ended (outside a transaction) and record it;
    True when the charge is now granted or refused."""
    try:
        intent = get_gateway().retrieve_payment(payment_intent_id=intent_id)
    except GatewayError:
        logger.warning("auto top-up intent could not be looked up", extra={"intent": intent_id})
        return False
    status = str(intent.get("status") or "")
    if status not in ("succeeded", "requires_payment_method", "canceled"):
        return False  # still processing: look again at the next sweep
    with transaction.atomic():
        charge = _locked_charge(charge_id)
        if charge is None or charge.status != Status.CHARGED:
            return False  # its webhook came meanwhile
        if status == "succeeded":
            currency = str(intent.get("currency") or charge.currency)
            received = from_minor(int(intent.get("amount_received") or 0), currency)
            _grant(charge, intent_id=intent_id, amount=received or charge.amount, currency=currency)
        else:
            setting = AutoTopUp.objects.select_for_update().get(user_id=charge.user_id)
            _refuse(charge, setting, Status.DECLINED, f"The payment failed at Stripe ({status}).")
    logger.warning(
        "auto top-up settled by the sweep", extra={"intent": intent_id, "intent_status": status}
    )
    return True


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


# --------------------------------------------------------------------------- webhooks


def _webhook_charge(user: CustomUser, intent: dict[str, Any]) -> AutoTopUpCharge:
    """Our locked charge named by ``intent``'s metadata; ``MissingPrerequisite`` if absent.

    The row commits before its intent is created, so a missing one is not a
    race to ignore: raising keeps the event (and Stripe retrying) for staff.
    """
    key = str((intent.get("metadata") or {}).get(CHARGE_KEY, ""))
    charge = (
        AutoTopUpCharge.objects.select_for_update(of=("self",))
        .select_related("product")
        .filter(idempotency_key=key, user=user)
        .first()
    )
    if charge is None:
        logger.error("auto top-up charge not found", extra={"charge": key, "user_id": user.pk})
        raise MissingPrerequisite(f"No auto top-up {key!r} for user {user.pk}.")
    return charge


def top_up_paid(*, user: CustomUser, intent: dict[str, Any]) -> None:
    """Grant a paid top-up's credits once (``payment_intent.succeeded`` of our charge).

    Money that arrived is always credited, whatever the task recorded before.
    """
    charge = _webhook_charge(user, intent)
    if charge.payment_id is not None:
        return  # granted already (by the task, the sweep or an earlier delivery)
    currency = str(intent.get("currency") or charge.currency)
    amount = from_minor(int(intent.get("amount_received") or intent.get("amount") or 0), currency)
    _grant(charge, intent_id=str(intent["id"]), amount=amount, currency=currency)


def top_up_failed(*, user: CustomUser, intent: dict[str, Any]) -> None:
    """``payment_intent.payment_failed`` of our charge: refuse it if still in flight
    (a ``processing`` intent that failed later, or the task not done yet)."""
    charge = _webhook_charge(user, intent)
    if charge.status not in AutoTopUpCharge.IN_FLIGHT:
        return  # the task recorded it already, or it was granted
    setting = AutoTopUp.objects.select_for_update().get(user_id=charge.user_id)
    error = intent.get("last_payment_error") or {}
    code = str(error.get("code") or "payment_failed")
    needs_authentication = code == "authentication_required"
    status = Status.AUTHENTICATION_REQUIRED if needs_authentication else Status.DECLINED
    charge.stripe_payment_intent_id = str(intent["id"])
    _refuse(charge, setting, status, f"{code}: {error.get('message') or 'The payment failed.'}")


def _grant(charge: AutoTopUpCharge, *, intent_id: str, amount: Decimal, currency: str = "") -> None:
    """Record the locked ``charge``'s payment and grant its credits, keyed by the intent id.

    The one path of the task, the sweep and the webhook: the caller holds the
    row lock and has checked ``charge.payment_id`` is unset.
    """
    product = charge.product
    payment = Payment.objects.create(
        user_id=charge.user_id,
        product=product,
        kind=Payment.Kind.CREDIT_PURCHASE,
        status=Payment.Status.SUCCEEDED,
        amount=amount,
        currency=currency or charge.currency,
        credits=charge.credits,
        credit_reference=intent_id,
        price_id=product.stripe_price_id,
        description=f"Auto top-up: 1 x {product.name}",
        stripe_payment_intent_id=intent_id,
    )
    ledger.grant(
        charge.user,
        charge.credits,
        source=CreditLot.Source.PURCHASE,
        reference=intent_id,
        description=f"Auto top-up: {product.name}",
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
        extra={
            "user_id": charge.user_id,
            "charge": charge.idempotency_key,
            "credits": str(charge.credits),
        },
    )


def on_account_deleted(sender: Any, user_id: int, **kwargs: Any) -> None:
    """``users.signals.account_deleted`` (sent inside the deletion's transaction): turn
    auto top-up off and forget the saved card, so a closed account is never charged."""
    turned_off = AutoTopUp.objects.filter(user_id=user_id).update(
        enabled=False, payment_method_id="", updated_at=timezone.now()
    )
    if turned_off:
        logger.info("auto top-up turned off for a deleted account", extra={"user_id": user_id})


# --------------------------------------------------------------------------- email

_REASONS = {
    Status.AUTHENTICATION_REQUIRED: "your bank asked you to confirm the payment yourself",
    Status.DECLINED: "your card was declined",
    Status.PACK_UNAVAILABLE: "the credit pack you chose is no longer on sale",
    Status.PACK_TOO_SMALL: "the credit pack you chose now gives fewer credits than your threshold",
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


# Connected here rather than in ``apps.ready``: the charge path and the deletion hook
# live and are tested together; the module is imported at start-up by ``apps.ready``.
account_deleted.connect(on_account_deleted, dispatch_uid="auto_top_up_account_deleted")
