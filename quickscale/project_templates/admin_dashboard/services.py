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
from django.http import HttpRequest

from admin_dashboard.models import AuditLog, RefundRequest
from common.formatting import format_credit_count, format_credits
from credits import ledger
from credits.exceptions import CreditsError
from credits.models import LedgerEntry
from services.configuration import ServiceConfigError, service_update
from services.models import Service
from stripe_manager.catalog import catalog_sync
from stripe_manager.exceptions import RefundError
from stripe_manager.gateway import CatalogError, GatewayError
from stripe_manager.models import Payment, Refund
from stripe_manager.refunds import refund_payment
from users import lockout, security
from users.models import CustomUser, SecurityEvent

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

    A deduction larger than the available balance (live credits no running
    call holds) is refused, and the ledger itself never takes a balance below
    zero even if credits were spent in between.
    The entry and the audit row commit together; the same ``reference`` twice
    adjusts and audits once.
    """
    reason = reason.strip()
    if not reason:
        raise DashboardError("Give a reason for the adjustment: it is kept in the audit log.")
    if amount == 0:
        raise DashboardError("Enter an amount above zero.")
    if amount < 0:
        # Credits held by calls still running are not the ledger's to take back.
        available = ledger.balance(user).available
        if -amount > available:
            raise DashboardError(
                f"{user.email} has {format_credit_count(available)} available; a deduction "
                f"of {format_credits(-amount)} "
                "would take the balance below zero. Deduct at most the available balance."
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


def user_unlock(*, actor: CustomUser, user: CustomUser, request: HttpRequest | None = None) -> None:
    """Lift the sign-in lockout of ``user``'s account, in the security log and the audit log."""
    with transaction.atomic():
        lockout.clear_account(user.email)
        security.record(
            SecurityEvent.Kind.LOCKOUT_LIFTED,
            request=request,
            email=user.email,
            detail=f"account {user.email} by {actor.email}",
        )
        audit(actor, AuditLog.Action.USER_UNLOCK, target_user=user)


# --------------------------------------------------------------------------- services


@transaction.atomic
def service_toggle(*, actor: CustomUser, name: str, active: bool) -> Service:
    """Switch a service on or off (``services.configuration.service_update``), audited."""
    try:
        service = service_update(name, is_active=active)
    except ServiceConfigError as error:
        raise DashboardError(str(error)) from error
    audit(
        actor,
        AuditLog.Action.SERVICE_TOGGLE,
        target=service,
        details={"is_active": active},
    )
    return service


@transaction.atomic
def service_cost_change(
    *, actor: CustomUser, name: str, credit_cost: Decimal, reason: str = ""
) -> Service:
    """Change what a service costs per call, audited with the old and new cost."""
    before = Service.objects.filter(name=name).values_list("credit_cost", flat=True).first()
    try:
        service = service_update(name, credit_cost=credit_cost)
    except ServiceConfigError as error:
        raise DashboardError(str(error)) from error
    audit(
        actor,
        AuditLog.Action.SERVICE_COST,
        target=service,
        reason=reason,
        details={"from": str(before), "to": str(service.credit_cost)},
    )
    return service


# --------------------------------------------------------------------------- Stripe


def product_sync(*, actor: CustomUser) -> tuple[int, int]:
    """Pull the catalog from Stripe (``stripe_manager.catalog.catalog_sync``), audited."""
    try:
        upserted, deactivated = catalog_sync()
    except CatalogError as error:  # Stripe answered; a product's metadata is unusable
        audit(actor, AuditLog.Action.PRODUCT_SYNC, details={"error": str(error)})
        raise DashboardError(str(error)) from error
    except GatewayError as error:
        audit(actor, AuditLog.Action.PRODUCT_SYNC, details={"error": str(error)})
        raise DashboardError(f"Stripe could not be reached: {error}") from error
    audit(
        actor,
        AuditLog.Action.PRODUCT_SYNC,
        details={"synced": upserted, "deactivated": deactivated},
    )
    return upserted, deactivated


def refund_requests_seen(payment: Payment) -> int:
    """How many refund requests a payment has had: the refund form carries it."""
    return RefundRequest.objects.filter(payment=payment).count()


def refund(
    *,
    actor: CustomUser,
    payment: Payment,
    amount: Decimal | None,
    reason: str,
    seen: int,
) -> Refund:
    """Refund all (``amount=None``) or part of ``payment`` through ``refund_payment``, once.

    First a ``RefundRequest`` for the page state the staff member saw is
    committed on its own; a second request for the same state (a double click,
    a resubmission, a colleague on the same page) fails on its unique
    constraint and nothing else happens. Then ``stripe_manager``'s one refund
    function validates and refunds (it also refuses more than what is left).
    The outcome, refused or done, is audited.
    """
    reason = reason.strip()
    if not reason:
        raise DashboardError("Give a reason for the refund: it is kept in the audit log.")
    try:
        with transaction.atomic():
            request = RefundRequest.objects.create(
                payment=payment, sequence=seen, requested_by=actor, amount=amount, reason=reason
            )
    except IntegrityError:
        raise DashboardError(
            "This refund was already requested (a second click, or another staff member at "
            "the same time). Reload the payment to see its refunds before trying again."
        ) from None
    details: dict[str, Any] = {
        "payment": payment.receipt_number,
        "requested": "all that is left" if amount is None else str(amount),
    }
    try:
        result = refund_payment(payment_id=payment.pk, amount=amount, reason=reason, actor=actor)
    except RefundError as error:
        RefundRequest.objects.filter(pk=request.pk).update(error=str(error))
        audit(
            actor,
            AuditLog.Action.REFUND_FAILED,
            target=payment,
            target_user=payment.user,
            reason=reason,
            details={**details, "error": str(error)},
        )
        raise DashboardError(str(error)) from error
    RefundRequest.objects.filter(pk=request.pk).update(refund=result)
    audit(
        actor,
        AuditLog.Action.REFUND,
        target=payment,
        target_user=payment.user,
        reason=reason,
        details={
            **details,
            "refunded": str(result.amount),
            "status": result.status,
            "credits_reversed": str(result.credits_reversed),
            "stripe_refund_id": result.stripe_refund_id or "",
        },
    )
    return result
