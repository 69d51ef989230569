"""Credit emails: low balance after a consume, and credits about to expire.

Both are optional: a user who switched one off (``users.email_preferences``)
does not get it, and each carries a one-click unsubscribe link and header.

Each email has a plain-text and an HTML body rendered from
``credits/emails/<name>.txt`` / ``.html`` and names the project. The
low-balance email is decided after the consume commits and goes through the
outbox (``common.mail_tasks``): the request that spent the credits never
waits for the mail server, and a refused send is retried. The expiry reminder
is sent by the reminder run itself, already outside any request; a failed send
there is reported so the next run tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.urls import reverse

from common.email import RenderedEmail, absolute_url, render_templated, send_templated
from common.formatting import format_credit_count
from common.mail_tasks import email_queue
from credits.models import CreditLot
from users.email_preferences import Topic, unsubscribe_headers, unsubscribe_url, wants_email
from users.models import CustomUser

logger = logging.getLogger(__name__)


def _send_now(
    template: str,
    *,
    to: str,
    subject: str,
    context: dict[str, Any],
    headers: tuple[tuple[str, str], ...] = (),
) -> bool:
    return send_templated(
        f"credits/emails/{template}",
        to=to,
        subject=subject,
        context={"credits_url": absolute_url(reverse("credits:dashboard")), **context},
        headers=headers,
    )


def send_low_balance_email(user_id: int, balance: Decimal) -> None:
    """Queue the email telling the user their balance fell to ``LOW_CREDIT_THRESHOLD`` or below."""
    email_queue(low_balance_email, user_id=user_id, balance=str(balance))


def low_balance_email(user_id: int, balance: str) -> RenderedEmail | None:
    """The low-balance email, rendered when it is sent.

    None when the account is gone or switched these emails off.
    """
    user = CustomUser.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email or not wants_email(user, Topic.LOW_BALANCE):
        return None
    unsubscribe = unsubscribe_url(user, Topic.LOW_BALANCE)
    return render_templated(
        "credits/emails/low_balance",
        to=user.email,
        subject="Your credit balance is low",
        context={
            "credits_url": absolute_url(reverse("credits:dashboard")),
            "user": user,
            "balance": Decimal(balance),
            "threshold": getattr(settings, "LOW_CREDIT_THRESHOLD", 0),
            "unsubscribe_url": unsubscribe,
        },
        headers=unsubscribe_headers(unsubscribe),
    )


def send_expiry_reminder_email(user: CustomUser, lots: Sequence[CreditLot]) -> bool:
    """Tell the user which of their credits expire soon, and when; False when not sent.

    The caller skips users who switched these emails off (``wants_email``).
    """
    total = sum((lot.remaining for lot in lots), Decimal("0.00"))
    unsubscribe = unsubscribe_url(user, Topic.EXPIRY)
    sent = _send_now(
        "expiry_reminder",
        to=user.email,
        subject=f"{format_credit_count(total)} expire soon",
        context={"user": user, "lots": lots, "total": total, "unsubscribe_url": unsubscribe},
        headers=unsubscribe_headers(unsubscribe),
    )
    if sent:
        logger.info(
            "expiry reminder sent",
            extra={"user_id": user.pk, "lots": [lot.pk for lot in lots], "amount": str(total)},
        )
    return sent
