"""Credit emails: low balance after a consume, and credits about to expire.

Each email has a plain-text and an HTML body rendered from
``credits/emails/<name>.txt`` / ``.html`` and names the project
(``PROJECT_NAME``). Sending failures are logged and never undo a ledger write:
the low-balance email is sent after the consume commits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from credits.models import CreditLot
from users.models import CustomUser

logger = logging.getLogger(__name__)


def _send(template: str, *, to: str, subject: str, context: dict[str, Any]) -> None:
    project_name = settings.PROJECT_NAME
    full_context = {
        "PROJECT_NAME": project_name,
        "credits_url": getattr(settings, "SITE_URL", "").rstrip("/") + reverse("credits:dashboard"),
        **context,
    }
    text = render_to_string(f"credits/emails/{template}.txt", full_context)
    html = render_to_string(f"credits/emails/{template}.html", full_context)
    message = EmailMultiAlternatives(
        subject=f"[{project_name}] {subject}",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(html, "text/html")
    message.send()


def send_low_balance_email(user_id: int, balance: Decimal) -> None:
    """Tell the user their balance fell to ``LOW_CREDIT_THRESHOLD`` or below."""
    user = CustomUser.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return
    _send(
        "low_balance",
        to=user.email,
        subject="Your credit balance is low",
        context={
            "user": user,
            "balance": balance,
            "threshold": getattr(settings, "LOW_CREDIT_THRESHOLD", 0),
        },
    )
    logger.info("low balance email sent", extra={"user_id": user_id, "balance": str(balance)})


def send_expiry_reminder_email(user: CustomUser, lots: Sequence[CreditLot]) -> None:
    """Tell the user which of their credits expire soon, and when."""
    total = sum((lot.remaining for lot in lots), Decimal("0.00"))
    _send(
        "expiry_reminder",
        to=user.email,
        subject=f"{total} credits expire soon",
        context={"user": user, "lots": lots, "total": total},
    )
    logger.info(
        "expiry reminder sent",
        extra={"user_id": user.pk, "lots": [lot.pk for lot in lots], "amount": str(total)},
    )
