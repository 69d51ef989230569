"""Credit emails: low balance after a consume, and credits about to expire.

Each email has a plain-text and an HTML body rendered from
``credits/emails/<name>.txt`` / ``.html`` and names the project. A failed send
is logged and never undoes a ledger write: the low-balance email is sent after
the consume commits, and the expiry reminder reports it so the reminder is
tried again on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.urls import reverse

from common.email import absolute_url, send_templated
from credits.models import CreditLot
from users.models import CustomUser

logger = logging.getLogger(__name__)


def _send(template: str, *, to: str, subject: str, context: dict[str, Any]) -> bool:
    return send_templated(
        f"credits/emails/{template}",
        to=to,
        subject=subject,
        context={"credits_url": absolute_url(reverse("credits:dashboard")), **context},
    )


def send_low_balance_email(user_id: int, balance: Decimal) -> None:
    """Tell the user their balance fell to ``LOW_CREDIT_THRESHOLD`` or below."""
    user = CustomUser.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return
    sent = _send(
        "low_balance",
        to=user.email,
        subject="Your credit balance is low",
        context={
            "user": user,
            "balance": balance,
            "threshold": getattr(settings, "LOW_CREDIT_THRESHOLD", 0),
        },
    )
    if sent:
        logger.info("low balance email sent", extra={"user_id": user_id, "balance": str(balance)})


def send_expiry_reminder_email(user: CustomUser, lots: Sequence[CreditLot]) -> bool:
    """Tell the user which of their credits expire soon, and when; False when not sent."""
    total = sum((lot.remaining for lot in lots), Decimal("0.00"))
    sent = _send(
        "expiry_reminder",
        to=user.email,
        subject=f"{total} credits expire soon",
        context={"user": user, "lots": lots, "total": total},
    )
    if sent:
        logger.info(
            "expiry reminder sent",
            extra={"user_id": user.pk, "lots": [lot.pk for lot in lots], "amount": str(total)},
        )
    return sent
