"""Reads of the dashboard: headline figures, user search, the audit log.

Figures about credits come from ``credits.selectors``; pages with possibly huge
tables use ``capped_page``, which never counts more than ``COUNT_CAP`` rows, so a
page costs the same whether the table holds a thousand rows or millions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Generic, TypeVar

from django.db.models import Model, QuerySet
from django.utils import timezone

from admin_dashboard.models import AuditLog
from credits import selectors as credit_selectors
from credits.models import ZERO, CreditLot
from users.models import CustomUser

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
    count = (
        len(rows) if page == 1 and not has_next else queryset.order_by()[: COUNT_CAP + 1].count()
    )
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
        credits_sold=sold,
        credits_consumed=consumed,
        period_days=days,
    )


def user_search(*, email: str = "") -> QuerySet[CustomUser]:
    """Accounts whose email contains ``email`` (case-insensitive), newest first."""
    users = CustomUser.objects.order_by("-date_joined", "-id")
    if email:
        users = users.filter(email__icontains=email)
    return users


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
