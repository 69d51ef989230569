"""Writes of the dashboard: the audit log and every staff action, each audited.

Each action calls the owning app's write function (``credits.ledger.adjust``,
``services.configuration.service_update``, ``stripe_manager``'s refund and
catalog sync) and records an ``AuditLog`` row naming the acting staff member.
Actions carry a reference (a token of the form that asked for them), so a
double click or a retry does the work and writes the audit row once.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from admin_dashboard.models import AuditLog
from credits import ledger
from credits.exceptions import CreditsError
from credits.models import LedgerEntry
from users.models import CustomUser

logger = logging.getLogger(__name__)


class DashboardError(Exception):
    """A staff action refused as asked; the message says why and what to do."""


def audit(
    actor: CustomUser,
    action: AuditLog.Action | str,
    *,
    target_user: CustomUser | None = None,
    target: Any = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    reference: str = "",
) -> AuditLog:
    """Record one staff action; with a ``reference`` seen before, return the first row."""
    fields: dict[str, Any] = {
        "actor": actor,
        "action": action,
        "target_user": target_user,
        "reason": reason,
        "details": details or {},
        "reference": reference,
    }
    if target is not None:
        fields["target_type"] = target._meta.label_lower
        fields["target_id"] = str(target.pk)
        fields["target_label"] = str(target)[:255]
    elif target_user is not None:
        fields["target_type"] = target_user._meta.label_lower
        fields["target_id"] = str(target_user.pk)
        fields["target_label"] = target_user.email[:255]
    if reference:
        try:
            with transaction.atomic():
                return AuditLog.objects.create(**fields)
        except IntegrityError:
            return AuditLog.objects.get(action=action, reference=reference)
    return AuditLog.objects.create(**fields)


@transaction.atomic
def credit_adjust(
    *,
    actor: CustomUser,
    user: CustomUser,
    amount: Decimal,
    reason: str,
    reference: str,
) -> LedgerEntry:
    """Grant (positive ``amount``) or deduct (negative) credits through ``ledger.adjust``.

    A deduction larger than the live balance is refused, and the ledger itself
    never takes a balance below zero even if credits were spent in between.
    The entry and the audit row commit together; the same ``reference`` twice
    adjusts and audits once.
    """
    reason = reason.strip()
    if not reason:
        raise DashboardError("Give a reason for the adjustment: it is kept in the audit log.")
    if amount == 0:
        raise DashboardError("Enter an amount above zero.")
    if amount < 0:
        available = ledger.balance(user).total
        if -amount > available:
            raise DashboardError(
                f"{user.email} has {available} credits; a deduction of {-amount} would take "
                "the balance below zero. Deduct at most the balance."
            )
    try:
        entry = ledger.adjust(
            user, amount, reference=f"dashboard:{reference}", reason=reason, actor=actor
        )
    except CreditsError as error:
        raise DashboardError(str(error)) from error
    audit(
        actor,
        AuditLog.Action.CREDIT_ADJUSTMENT,
        target_user=user,
        reason=reason,
        details={
            "requested": str(amount),
            "applied": str(entry.amount),
            "shortfall": str(entry.shortfall),
            "ledger_key": entry.key,
        },
        reference=reference,
    )
    logger.info(
        "staff adjusted credits",
        extra={"actor_id": actor.pk, "user_id": user.pk, "amount": str(entry.amount)},
    )
    return entry
