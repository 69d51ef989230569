"""Billing emails: receipt, refund, failed payment (with a billing link), upcoming renewal.

Each ``queue_*`` function is called inside the transaction that records the
payment or refund (a webhook's, a refund's): it writes the email to the outbox
of ``common.mail_tasks`` in that transaction, and a worker sends it once that
commits, so the webhook never waits for the mail server, a rolled-back event
sends nothing and a refused send is retried. Each email has a key (the payment,
the refund, the Stripe event), so however often Stripe delivers an event, the
email goes out once. The ``*_email`` builders run in the worker and read the
rows as they are then.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.urls import reverse
from django.utils.dateparse import parse_datetime

from common.email import RenderedEmail, absolute_url, render_templated
from common.mail_tasks import email_queue
from credits import selectors as credit_selectors
from stripe_manager.models import Payment, Refund
from users.email_preferences import Topic, unsubscribe_headers, unsubscribe_url, wants_email
from users.models import CustomUser


def _render(
    template: str,
    *,
    to: str,
    subject: str,
    context: dict[str, Any],
    headers: tuple[tuple[str, str], ...] = (),
) -> RenderedEmail:
    return render_templated(
        f"stripe_manager/emails/{template}",
        to=to,
        subject=subject,
        context={"billing_url": absolute_url(reverse("stripe_manager:billing")), **context},
        headers=headers,
    )


def _address(user_id: int) -> str:
    """The account's address, or "" when there is nobody to write to any more."""
    user = CustomUser.objects.filter(pk=user_id, is_active=True).only("email").first()
    return user.email if user is not None else ""


# --------------------------------------------------------------------------- queueing


def queue_receipt(payment_id: int) -> None:
    """Queue the receipt of a successful payment (once per payment)."""
    email_queue(receipt_email, key=f"receipt:{payment_id}", payment_id=payment_id)


def queue_refund_notice(refund_id: int) -> None:
    """Queue the notice of a succeeded refund (once per refund)."""
    email_queue(refund_email, key=f"refund:{refund_id}", refund_id=refund_id)


def queue_payment_failed(event_id: str, user_id: int, amount: Decimal, currency: str) -> None:
    """Queue the failed-payment email of Stripe event ``event_id`` (once per event)."""
    email_queue(
        payment_failed_email,
        key=f"payment_failed:{event_id}",
        user_id=user_id,
        amount=str(amount),
        currency=currency,
    )


def queue_upcoming_renewal(
    event_id: str, user_id: int, amount: Decimal, currency: str, when: datetime | None
) -> None:
    """Queue the upcoming-renewal email of Stripe event ``event_id`` (once per event)."""
    email_queue(
        upcoming_renewal_email,
        key=f"upcoming_renewal:{event_id}",
        user_id=user_id,
        amount=str(amount),
        currency=currency,
        when=when.isoformat() if when else None,
    )


# --------------------------------------------------------------------------- builders


def receipt_email(payment_id: int) -> RenderedEmail | None:
    """The receipt of a payment, as the payment row reads when it is sent."""
    payment = Payment.objects.select_related("user").filter(pk=payment_id).first()
    if payment is None or not payment.user.is_active or not payment.user.email:
        return None
    return _render(
        "receipt",
        to=payment.user.email,
        subject=f"Receipt {payment.receipt_number}",
        context={
            "payment": payment,
            "receipt_url": absolute_url(
                reverse("stripe_manager:receipt", args=[payment.receipt_number])
            ),
        },
    )


def refund_email(refund_id: int) -> RenderedEmail | None:
    """What was refunded of which payment, and the credits taken back with it."""
    refund = Refund.objects.select_related("payment__user").filter(pk=refund_id).first()
    if refund is None or refund.status != Refund.Status.SUCCEEDED:
        return None
    payment = refund.payment
    if not payment.user.is_active or not payment.user.email:
        return None
    # The ledger's reversal says what was really taken back: the refund's
    # credits_reversed also counts the share already spent (the shortfall).
    reversal = (
        credit_selectors.reversal_of(payment.credit_reference, refund.stripe_refund_id)
        if refund.stripe_refund_id
        else None
    )
    return _render(
        "refund",
        to=payment.user.email,
        subject=f"Refund of {payment.receipt_number}",
        context={
            "refund": refund,
            "payment": payment,
            "credits_taken": -reversal.amount if reversal is not None else Decimal("0"),
            "credits_kept": reversal.shortfall if reversal is not None else Decimal("0"),
            "receipt_url": absolute_url(
                reverse("stripe_manager:receipt", args=[payment.receipt_number])
            ),
        },
    )


def payment_failed_email(user_id: int, amount: str, currency: str) -> RenderedEmail | None:
    """Tell the user a payment failed and where to update their card."""
    address = _address(user_id)
    if not address:
        return None
    return _render(
        "payment_failed",
        to=address,
        subject="Your payment failed",
        context={"amount": Decimal(amount), "currency": currency.upper()},
    )


def upcoming_renewal_email(
    user_id: int, amount: str, currency: str, when: str | None
) -> RenderedEmail | None:
    """Tell the user their plan renews soon, for how much (unless they switched it off)."""
    user = CustomUser.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email or not wants_email(user, Topic.RENEWAL):
        return None
    unsubscribe = unsubscribe_url(user, Topic.RENEWAL)
    return _render(
        "upcoming_renewal",
        to=user.email,
        subject="Your plan renews soon",
        context={
            "amount": Decimal(amount),
            "currency": currency.upper(),
            "when": parse_datetime(when) if when else None,
            "unsubscribe_url": unsubscribe,
        },
        headers=unsubscribe_headers(unsubscribe),
    )
