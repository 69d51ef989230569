"""Refunds: the one refund function and the one credit reversal.

``refund_payment`` is what staff trigger (admin action, ``refund_payment``
command, the staff dashboard's refund form). It validates, saves a ``Refund`` row with
its idempotency key *before* calling Stripe, calls the gateway, then applies
the refund. ``refund_apply`` is the reversal, keyed by the Stripe refund id,
called both there and by the ``refund.created``/``refund.updated`` webhooks
(sent for every refund, including those made in Stripe's dashboard): whichever
comes first does the work (and queues the user's refund notice in the same
transaction), the other changes nothing.

A plan payment's intent arrives with ``invoice_payment.paid``, not with the
invoice (whose ``payments`` list is never in a payload); when it has not been
recorded yet, ``fill_plan_payment_intent`` asks the gateway for the invoice's
payments.
"""

from __future__ import annotations

import logging
import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from common.formatting import format_money
from credits import ledger
from stripe_manager import emails
from stripe_manager.exceptions import RefundError
from stripe_manager.gateway import GatewayError, get_gateway
from stripe_manager.models import Payment, Refund
from stripe_manager.money import AmountError, from_minor, to_minor
from users.models import CustomUser

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
REFUNDABLE = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED)


def _money(value: Decimal | int | str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise RefundError(f"{value!r} is not an amount. Give a number like 5 or 12.50.") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise RefundError("A refund amount must be positive with at most 2 decimal places.")
    return amount


def refund_payment(
    *,
    payment_id: int,
    amount: Decimal | int | str | None = None,
    reason: str = "",
    actor: CustomUser | None = None,
) -> Refund:
    """Refund all (``amount=None``) or part of a payment and take back its credits."""
    key = f"refund-{uuid.uuid4().hex}"
    try:
        fill_plan_payment_intent(payment_id)  # outside the lock: it may call Stripe
    except GatewayError as error:
        raise RefundError(str(error)) from error
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None:
            raise RefundError(f"There is no payment {payment_id}.")
        if payment.status not in REFUNDABLE:
            raise RefundError(
                f"Payment {payment.receipt_number} is {payment.get_status_display().lower()}; "
                "only paid payments can be refunded."
            )
        if not payment.stripe_payment_intent_id:
            raise RefundError(f"Payment {payment.receipt_number} has no Stripe payment to refund.")
        pending = Refund.objects.filter(payment=payment, status=Refund.Status.PENDING).aggregate(
            total=Sum("amount")
        )["total"] or Decimal("0")
        refundable = payment.amount - payment.amount_refunded - pending
        value = refundable if amount is None else _money(amount)
        if value <= 0 or value > refundable:
            raise RefundError(
                f"Only {format_money(max(refundable, Decimal('0')), payment.currency)} of "
                f"{payment.receipt_number} is left to refund; "
                f"{format_money(value, payment.currency)} was asked."
            )
        try:
            # Checked before the row exists: a refund Stripe cannot be asked for stays unsaved.
            minor_units = to_minor(value, payment.currency)
        except AmountError as error:
            raise RefundError(str(error)) from error
        refund = Refund.objects.create(
            payment=payment, amount=value, idempotency_key=key, reason=reason, requested_by=actor
        )
    try:
        result = get_gateway().create_refund(
            payment_intent_id=payment.stripe_payment_intent_id,
            amount=minor_units,
            idempotency_key=key,
            metadata={"refund_key": key, "receipt_number": payment.receipt_number},
        )
    except GatewayError as error:
        Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(
            status=Refund.Status.FAILED, error=str(error)
        )
        raise RefundError(str(error)) from error
    if result.status in ("failed", "canceled"):
        Refund.objects.filter(pk=refund.pk).update(
            status=Refund.Status.FAILED, stripe_refund_id=result.refund_id, error=result.status
        )
        raise RefundError(f"Stripe reports the refund as {result.status}.")
    if result.status == "succeeded":
        refund_apply(
            payment_id=payment.pk,
            stripe_refund_id=result.refund_id,
            amount=result.amount,
            refund_key=key,
        )
    else:
        # Pending at Stripe: refund.updated applies it once it succeeds.
        Refund.objects.filter(pk=refund.pk, stripe_refund_id__isnull=True).update(
            stripe_refund_id=result.refund_id
        )
    refund.refresh_from_db()
    return refund


def fill_plan_payment_intent(payment_id: int) -> str:
    """The payment intent of a plan payment, from the gateway when not recorded yet."""
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or payment.stripe_payment_intent_id or not payment.stripe_invoice_id:
        return payment.stripe_payment_intent_id if payment else ""
    intents = get_gateway().invoice_payment_intents(invoice_id=payment.stripe_invoice_id)
    if not intents:
        return ""
    Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id="").update(
        stripe_payment_intent_id=intents[-1]
    )
    return intents[-1]


# A refund of an unrecorded intent looks this far back among the customer's plan
# payments still without one (``invoice_payment.paid`` fills them as they come).
UNFILLED_PLAN_PAYMENTS_SEARCHED = 12


def plan_payment_for_intent(*, user: CustomUser, payment_intent_id: str) -> Payment | None:
    """The user's plan payment paid by ``payment_intent_id`` whose intent was not recorded.

    For a refund that arrives before the plan payment's ``invoice_payment.paid``:
    fills the newest unfilled plan payments from the gateway until it finds it.
    """
    unfilled = Payment.objects.filter(
        user=user, stripe_payment_intent_id="", stripe_invoice_id__gt=""
    ).order_by("-id")[:UNFILLED_PLAN_PAYMENTS_SEARCHED]
    for candidate in unfilled:
        if fill_plan_payment_intent(candidate.pk) == payment_intent_id:
            return Payment.objects.get(pk=candidate.pk)
    return None


@transaction.atomic
def refund_apply(
    *, payment_id: int, stripe_refund_id: str, amount: int, refund_key: str = ""
) -> Refund:
    """Record a succeeded Stripe refund and reverse its share of the credits, once.

    ``amount`` is in minor units. The credits taken back are the refund's
    share of the payment's credits; the refund that completes the payment
    takes back whatever is left, so partial refunds never leave a rounding
    cent behind. The ledger never takes back credits already spent (it records
    the shortfall for staff).
    """
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    refund = Refund.objects.select_for_update().filter(stripe_refund_id=stripe_refund_id).first()
    if refund is None and refund_key:
        refund = (
            Refund.objects.select_for_update()
            .filter(payment=payment, idempotency_key=refund_key)
            .first()
        )
    if refund is not None and refund.reversed_at is not None:
        return refund
    value = from_minor(amount, payment.currency)
    if refund is None:
        refund = Refund.objects.create(
            payment=payment,
            amount=value,
            idempotency_key=f"stripe:{stripe_refund_id}",
            stripe_refund_id=stripe_refund_id,
            reason="Refunded in Stripe",
        )
    refunded = min(payment.amount, payment.amount_refunded + value)
    reversed_before = Refund.objects.filter(payment=payment).aggregate(
        total=Sum("credits_reversed")
    )["total"] or Decimal("0")
    credits_left = max(payment.credits - reversed_before, Decimal("0"))
    if refunded >= payment.amount:
        credits = credits_left
    else:
        share = (payment.credits * value / payment.amount).quantize(CENT, ROUND_HALF_UP)
        credits = min(credits_left, share)
    if credits > 0 and payment.credit_reference:
        ledger.reverse(
            payment.credit_reference,
            amount=credits,
            key=stripe_refund_id,
            reason=f"Refund {stripe_refund_id} of payment {payment.receipt_number}",
        )
    refund.stripe_refund_id = stripe_refund_id
    refund.amount = value
    refund.status = Refund.Status.SUCCEEDED
    refund.credits_reversed = credits
    refund.reversed_at = timezone.now()
    refund.save()
    payment.amount_refunded = refunded
    payment.status = (
        Payment.Status.REFUNDED if refunded >= payment.amount else Payment.Status.PARTIALLY_REFUNDED
    )
    payment.save(update_fields=["amount_refunded", "status"])
    # In this transaction: the notice exists exactly when the refund is recorded.
    emails.queue_refund_notice(refund.pk)
    logger.info(
        "refund applied",
        extra={
            "payment_id": payment.pk,
            "refund": stripe_refund_id,
            "amount": str(value),
            "credits": str(credits),
        },
    )
    return refund
