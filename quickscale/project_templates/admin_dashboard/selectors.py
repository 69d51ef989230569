"""Reads of the dashboard: headline figures, user search, the audit log.

Figures about credits come from ``credits.selectors``; pages with possibly huge
tables use ``capped_page``, which never counts more than ``COUNT_CAP`` rows, so a
page costs the same whether the table holds a thousand rows or millions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db.models import Count, Exists, Model, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Lower
from django.utils import timezone

from admin_dashboard.models import AuditLog
from credits import selectors as credit_selectors
from credits.models import ZERO, CreditLot, LedgerEntry
from services import selectors as service_selectors
from services.models import Service, ServiceUsage
from stripe_manager import selectors as billing_selectors
from stripe_manager.models import Payment, StripeProduct, UserSubscription, WebhookFailure
from users.models import CustomUser, LoginLockout, SecurityEvent

COUNT_CAP = 1000
PER_PAGE = 25

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class CappedPage(Generic[M]):
    """One page of rows and a count that stops at ``COUNT_CAP`` ("1,000+")."""

    rows: list[M]
    number: int
    per_page: int
    count: int
    capped: bool
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def count_label(self) -> str:
        return f"{COUNT_CAP:,}+" if self.capped else f"{self.count:,}"

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.rows else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.rows)


def page_number(value: str | None) -> int:
    """A page number from the query string; anything odd gives page 1."""
    try:
        number = int(value or 1)
    except ValueError:
        return 1
    return min(max(number, 1), 10_000)


def capped_page(queryset: QuerySet[M], *, page: int, per_page: int = PER_PAGE) -> CappedPage[M]:
    """Return page ``page`` of ``queryset`` with a count capped at ``COUNT_CAP`` rows.

    Two queries whatever the table size: the rows (one extra to know whether a
    next page exists) and ``SELECT COUNT(*) FROM (... LIMIT cap + 1)``.
    """
    offset = (page - 1) * per_page
    rows = list(queryset[offset : offset + per_page + 1])
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    # Always counted, so a page costs the same queries at any size. The count keeps
    # the page's order: walking the same index from the newest row, it stops after
    # COUNT_CAP + 1 matches instead of scanning the table (recent rows are at its end).
    count = queryset.select_related(None).values("pk")[: COUNT_CAP + 1].count()
    capped = count > COUNT_CAP
    return CappedPage(
        rows=rows,
        number=page,
        per_page=per_page,
        count=min(count, COUNT_CAP),
        capped=capped,
        has_next=has_next,
    )


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def day_end(day: date) -> datetime:
    """The first moment after ``day`` (ranges are half-open)."""
    return day_start(day + timedelta(days=1))


@dataclass(frozen=True)
class Headline:
    users: int
    staff: int
    active_subscriptions: int
    webhook_failures: int
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
    return Headline(
        users=CustomUser.objects.count(),
        staff=CustomUser.objects.filter(is_staff=True).count(),
        active_subscriptions=UserSubscription.objects.filter(
            status__in=UserSubscription.LIVE
        ).count(),
        webhook_failures=WebhookFailure.objects.filter(resolved_at__isnull=True).count(),
        credits_sold=sold,
        credits_consumed=consumed,
        period_days=days,
    )


# Subscription filter of the user list: a status, "live" (in use) or "none" (never subscribed).
SUBSCRIPTION_LIVE = "live"
SUBSCRIPTION_NONE = "none"


def users_by_email(email: str) -> QuerySet[CustomUser]:
    """Accounts matching ``email``: exactly (any case) for a full address, else by part.

    A full address is looked up through the unique index on ``lower(email)``.
    """
    users = CustomUser.objects.all()
    if "@" in email and "." in email.split("@")[-1]:
        return users.alias(email_lower=Lower("email")).filter(email_lower=email.lower())
    return users.filter(email__icontains=email)


def user_search(*, email: str = "", subscription: str = "") -> QuerySet[CustomUser]:
    """Accounts by email and subscription status, newest first."""
    users = users_by_email(email) if email else CustomUser.objects.all()
    if subscription:
        subs = UserSubscription.objects.filter(user=OuterRef("pk"))
        if subscription == SUBSCRIPTION_LIVE:
            users = users.filter(Exists(subs.filter(status__in=UserSubscription.LIVE)))
        elif subscription == SUBSCRIPTION_NONE:
            users = users.filter(~Exists(subs))
        else:
            users = users.filter(Exists(subs.filter(status=subscription)))
    return users.order_by("-id")


@dataclass(frozen=True)
class AccountLockout:
    failures: int
    locked_until: datetime | None

    @property
    def locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()


def account_lockout(user: CustomUser) -> AccountLockout | None:
    """The sign-in failures counted against ``user``'s account, if any."""
    row = LoginLockout.objects.filter(
        scope=LoginLockout.Scope.ACCOUNT, key=user.email.strip().lower()
    ).first()
    return None if row is None else AccountLockout(row.failures, row.locked_until)


def security_events(user: CustomUser, *, limit: int = 20) -> list[SecurityEvent]:
    """The latest security log lines of ``user``'s account."""
    return list(SecurityEvent.objects.filter(user=user).order_by("-created_at", "-id")[:limit])


def user_payments(user: CustomUser, *, limit: int = 10) -> list[Payment]:
    """The user's latest payments (``stripe_manager.selectors.payments``)."""
    return list(billing_selectors.payments(user).order_by("-id")[:limit])


def user_subscriptions(user: CustomUser, *, limit: int = 5) -> list[UserSubscription]:
    """The user's subscriptions, live or not, newest first."""
    return list(
        UserSubscription.objects.filter(user=user).select_related("product").order_by("-id")[:limit]
    )


def user_usage(user: CustomUser, *, limit: int = 10) -> list[ServiceUsage]:
    """The user's latest service calls (``services.selectors.usages``)."""
    return list(service_selectors.usages(user)[:limit])


# --------------------------------------------------------------------------- payments


@dataclass(frozen=True)
class PaymentFilters:
    kind: str = ""
    status: str = ""
    email: str = ""
    stripe_id: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    start: date | None = None
    end: date | None = None


STRIPE_ID_PREFIXES = (
    ("pi_", "stripe_payment_intent_id"),
    ("cs_", "stripe_checkout_session_id"),
    ("in_", "stripe_invoice_id"),
    ("sub_", "stripe_subscription_id"),
    ("R-", "receipt_number"),
)


def payment_search(filters: PaymentFilters) -> QuerySet[Payment]:
    """Payments matching ``filters``, newest first (by id: it follows creation and is indexed)."""
    rows = Payment.objects.select_related("user", "product").order_by("-id")
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.email:
        # The matching accounts first (one scan of users), then their payments through
        # the user_id index: as a subquery the planner may walk every payment instead.
        user_ids = list(users_by_email(filters.email).values_list("pk", flat=True)[:COUNT_CAP])
        rows = rows.filter(user_id__in=user_ids)
    if filters.stripe_id:
        value = filters.stripe_id
        # Stripe ids say what they are: look in that one (indexed) column.
        field = next((f for prefix, f in STRIPE_ID_PREFIXES if value.startswith(prefix)), None)
        if field:
            rows = rows.filter(**{field: value})
        else:
            rows = rows.filter(
                Q(stripe_payment_intent_id=value)
                | Q(stripe_checkout_session_id=value)
                | Q(stripe_invoice_id=value)
                | Q(stripe_subscription_id=value)
                | Q(receipt_number=value)
            )
    if filters.amount_min is not None:
        rows = rows.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        rows = rows.filter(amount__lte=filters.amount_max)
    if filters.start:
        rows = rows.filter(created_at__gte=day_start(filters.start))
    if filters.end:
        rows = rows.filter(created_at__lt=day_end(filters.end))
    return rows


@dataclass(frozen=True)
class Warning:
    code: str
    message: str


@dataclass(frozen=True)
class Investigation:
    payment: Payment
    refunds: list[Any]
    entries: list[LedgerEntry]
    other_payments: list[Payment]
    credits_granted: Decimal
    credits_spent: Decimal | None
    warnings: list[Warning]


def _related_entries(payment: Payment) -> list[LedgerEntry]:
    reference = payment.credit_reference
    if not reference:
        return []
    return list(
        credit_selectors.entries(payment.user).filter(
            Q(key=reference) | Q(key__startswith=f"reversal:{reference}:")
        )
    )


def investigate(payment: Payment) -> Investigation:
    """Everything staff need about one payment, with warnings about what looks wrong."""
    entries = _related_entries(payment)
    grant = next((e for e in entries if e.kind == LedgerEntry.Kind.GRANT), None)
    granted = ZERO
    spent: Decimal | None = None
    if grant is not None:
        lots = [row.lot for row in grant.lot_rows.all()]
        granted = sum((lot.amount for lot in lots), ZERO)
        spent = sum((lot.amount - lot.remaining for lot in lots), ZERO)
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
    if payment.credits and grant is None and payment.status != Payment.Status.FAILED:
        warnings.append(
            Warning("no_grant", f"{payment.credits} credits are due but no grant is recorded.")
        )
    return Investigation(
        payment=payment,
        refunds=list(payment.refunds.select_related("requested_by").order_by("-id")),
        entries=entries,
        other_payments=list(
            Payment.objects.filter(user=payment.user).exclude(pk=payment.pk).order_by("-id")[:10]
        ),
        credits_granted=granted,
        credits_spent=spent,
        warnings=warnings,
    )


def products() -> QuerySet[StripeProduct]:
    """The whole local catalog, active first, in display order."""
    return StripeProduct.objects.order_by("-active", "display_order", "price", "id")


# --------------------------------------------------------------------------- services


@dataclass(frozen=True)
class ServiceStats:
    calls: int
    succeeded: int
    failed: int
    credits_consumed: Decimal
    unique_users: int

    @property
    def failure_rate(self) -> float:
        """Share of calls that failed (failed or refunded), 0 to 100."""
        return round(100 * self.failed / self.calls, 1) if self.calls else 0.0


def service_stats(service: Service, *, start: datetime, end: datetime) -> ServiceStats:
    """Calls, credits consumed, unique users and failures of ``service`` in [start, end)."""
    ok = ServiceUsage.Status.SUCCEEDED
    row = ServiceUsage.objects.filter(
        service=service, created_at__gte=start, created_at__lt=end
    ).aggregate(
        calls=Count("id"),
        succeeded=Count("id", filter=Q(status=ok)),
        credits=Sum("credits_charged", filter=Q(status=ok)),
        users=Count("user", distinct=True),
    )
    return ServiceStats(
        calls=row["calls"],
        succeeded=row["succeeded"],
        failed=row["calls"] - row["succeeded"],
        credits_consumed=row["credits"] or ZERO,
        unique_users=row["users"],
    )


def service_recent(service: Service, *, limit: int = 20) -> list[ServiceUsage]:
    """The latest calls of ``service``."""
    return list(
        ServiceUsage.objects.filter(service=service).select_related("user").order_by("-id")[:limit]
    )


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
