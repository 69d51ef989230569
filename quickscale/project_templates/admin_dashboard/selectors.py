"""Reads of the dashboard: headline figures, user search, payment investigation, the audit log.

What the dashboard shows of other apps comes from their selectors (users,
credits, services, stripe_manager); this module only combines them, and reads
the dashboard's own audit log. Pages of possibly huge tables go through
``common.pagination.capped_page``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from admin_dashboard.models import AuditLog
from common.dates import day_end, day_start
from credits import selectors as credit_selectors
from credits.models import ZERO, CreditLot, LedgerEntry
from stripe_manager import selectors as billing_selectors
from stripe_manager.models import Payment, Refund
from users import selectors as user_selectors
from users.models import CustomUser


@dataclass(frozen=True)
class Headline:
    users: int
    staff: int
    active_subscriptions: int
    webhook_failures: int
    stripe_events_due: int
    stripe_event_oldest_due_seconds: int
    credits_sold: Decimal
    credits_consumed: Decimal
    period_days: int


SOLD_SOURCES = (CreditLot.Source.PURCHASE, CreditLot.Source.SUBSCRIPTION)


def headline(*, days: int = 30, now: datetime | None = None) -> Headline:
    """The dashboard home's figures: accounts, and credits sold and used in the last ``days``."""
    end = timezone.now() if now is None else now
    totals = credit_selectors.totals_by_source(start=end - timedelta(days=days), end=end)
    sold = sum((t.granted for s, t in totals.items() if s in SOLD_SOURCES), ZERO)
    consumed = sum((t.consumed for t in totals.values()), ZERO)
    accounts = user_selectors.account_counts()
    backlog = billing_selectors.stripe_event_backlog()
    return Headline(
        users=accounts.users,
        staff=accounts.staff,
        active_subscriptions=billing_selectors.live_subscription_count(),
        webhook_failures=billing_selectors.open_webhook_failure_count(),
        stripe_events_due=backlog.due,
        stripe_event_oldest_due_seconds=int(backlog.oldest_due_seconds),
        credits_sold=sold,
        credits_consumed=consumed,
        period_days=days,
    )


def user_search(*, email: str = "", subscription: str = "") -> QuerySet[CustomUser]:
    """Accounts by email and subscription status, newest first."""
    users = user_selectors.users_by_email(email)
    if subscription:
        users = billing_selectors.users_by_subscription(users, subscription)
    return users.order_by("-id")


# --------------------------------------------------------------------------- payments


@dataclass(frozen=True)
class Warning:
    code: str
    message: str


@dataclass(frozen=True)
class Investigation:
    payment: Payment
    refunds: list[Refund]
    entries: list[LedgerEntry]
    other_payments: list[Payment]
    credits_granted: Decimal
    credits_reversed: Decimal
    credits_spent: Decimal | None
    warnings: list[Warning]


def investigate(payment: Payment) -> Investigation:
    """Everything staff need about one payment, with warnings about what looks wrong."""
    entries = list(credit_selectors.entries_for_reference(payment.user, payment.credit_reference))
    usage = credit_selectors.grant_usage(entries)
    granted = usage.granted if usage is not None else ZERO
    # Credits a refund took back are reversed, not spent: only what was used
    # or expired is beyond a refund's reach.
    reversed_ = usage.reversed if usage is not None else ZERO
    spent = usage.spent if usage is not None else None
    warnings: list[Warning] = []
    missing = [
        label
        for label, value in (
            ("payment intent", payment.stripe_payment_intent_id),
            (
                "checkout session" if payment.kind == Payment.Kind.CREDIT_PURCHASE else "invoice",
                payment.stripe_checkout_session_id
                if payment.kind == Payment.Kind.CREDIT_PURCHASE
                else payment.stripe_invoice_id,
            ),
        )
        if not value
    ]
    if missing:
        warnings.append(
            Warning("missing_stripe_ids", f"No Stripe {' or '.join(missing)} id is recorded.")
        )
    if payment.status == Payment.Status.FAILED:
        warnings.append(Warning("failed", "This payment failed: there is nothing to refund."))
    if payment.amount == 0:
        warnings.append(Warning("zero_amount", "This payment is for a zero amount."))
    if spent:
        warnings.append(
            Warning(
                "credits_spent",
                f"{spent} of the {granted} credits it granted are already spent or expired: "
                "a refund cannot take those back (the shortfall is recorded).",
            )
        )
    if payment.credits and usage is None and payment.status != Payment.Status.FAILED:
        warnings.append(
            Warning("no_grant", f"{payment.credits} credits are due but no grant is recorded.")
        )
    return Investigation(
        payment=payment,
        refunds=billing_selectors.payment_refunds(payment),
        entries=entries,
        other_payments=billing_selectors.other_payments(payment),
        credits_granted=granted,
        credits_reversed=reversed_,
        credits_spent=spent,
        warnings=warnings,
    )


# --------------------------------------------------------------------------- audit log


def audit_entries(
    *,
    action: str = "",
    actor_email: str = "",
    target_email: str = "",
    start: date | None = None,
    end: date | None = None,
) -> QuerySet[AuditLog]:
    """Audit rows matching the filters, newest first, with their actor and target user."""
    rows = AuditLog.objects.select_related("actor", "target_user").order_by("-created_at", "-id")
    if action:
        rows = rows.filter(action=action)
    if actor_email:
        rows = rows.filter(actor__email__iexact=actor_email)
    if target_email:
        rows = rows.filter(target_user__email__iexact=target_email)
    if start:
        rows = rows.filter(created_at__gte=day_start(start))
    if end:
        rows = rows.filter(created_at__lt=day_end(end))
    return rows


def user_audit(user: CustomUser, *, limit: int = 20) -> list[AuditLog]:
    """The latest staff actions on ``user``."""
    return list(
        AuditLog.objects.filter(target_user=user)
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )
