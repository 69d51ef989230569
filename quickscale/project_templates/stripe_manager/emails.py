"""Billing emails: receipt, failed payment (with a billing link), upcoming renewal.

Sent after the webhook's transaction commits; a sending failure is logged and
never undoes the payment's effect.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.urls import reverse

from common.email import absolute_url, send_templated
from stripe_manager.models import Payment
from users.models import CustomUser


def _send(template: str, *, to: str, subject: str, context: dict[str, Any]) -> None:
    send_templated(
        f"stripe_manager/emails/{template}",
        to=to,
        subject=subject,
        context={"billing_url": absolute_url(reverse("stripe_manager:billing")), **context},
    )


def send_receipt(payment_id: int) -> None:
    """Email the receipt of a successful payment."""
    payment = Payment.objects.select_related("user").filter(pk=payment_id).first()
    if payment is None or not payment.user.email:
        return
    _send(
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


def send_payment_failed(user_id: int, amount: Decimal, currency: str) -> None:
    """Tell the user a payment failed and where to update their card."""
    user = CustomUser.objects.filter(pk=user_id).first()
    if user is None or not user.email:
        return
    _send(
        "payment_failed",
        to=user.email,
        subject="Your payment failed",
        context={"amount": amount, "currency": currency.upper()},
    )


def send_upcoming_renewal(
    user_id: int, amount: Decimal, currency: str, when: datetime | None
) -> None:
    """Tell the user their plan renews soon, for how much."""
    user = CustomUser.objects.filter(pk=user_id).first()
    if user is None or not user.email:
        return
    _send(
        "upcoming_renewal",
        to=user.email,
        subject="Your plan renews soon",
        context={"amount": amount, "currency": currency.upper(), "when": when},
    )
