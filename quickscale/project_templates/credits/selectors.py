"""Reads of the credit ledger: the only way other apps look at lots and entries.

Selectors return data (querysets, pages, small dataclasses) and never raise
for "nothing there"; they never write. Balances come from
``credits.ledger.balance``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db.models import F, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from credits.models import ZERO, CreditHold, CreditLot, LedgerEntry, LedgerEntryLot
from users.models import CustomUser

ENTRIES_PER_PAGE = 25


@dataclass(frozen=True)
class NextExpiry:
    """The soonest moment some of a user's credits expire, and how many do then."""

    at: datetime
    amount: Decimal


@dataclass(frozen=True)
class SourceTotals:
    """Credits granted and consumed from lots of one source over a period."""

    granted: Decimal
    consumed: Decimal


def live_lots(user: CustomUser, *, at: datetime | None = None) -> QuerySet[CreditLot]:
    """Return ``user``'s lots with credits left at ``at`` (default: now), in spending order."""
    return (
        CreditLot.objects.filter(user=user)
        .live(at)
        .order_by("priority", F("expires_at").asc(nulls_last=True), "id")
    )


def next_expiry(user: CustomUser, *, at: datetime | None = None) -> NextExpiry | None:
    """Return when ``user``'s next credits expire and how many, or None if none will."""
    expiring = CreditLot.objects.filter(user=user).live(at).filter(expires_at__isnull=False)
    soonest = expiring.order_by("expires_at").values_list("expires_at", flat=True).first()
    if soonest is None:
        return None
    amount = expiring.filter(expires_at=soonest).aggregate(total=Sum("remaining"))["total"]
    return NextExpiry(at=soonest, amount=amount or ZERO)


def entries(user: CustomUser) -> QuerySet[LedgerEntry]:
    """Return ``user``'s ledger entries, newest first, with the lots each one touched."""
    return (
        LedgerEntry.objects.filter(user=user)
        .order_by("-created_at", "-id")
        .prefetch_related(
            Prefetch(
                "lot_rows", queryset=LedgerEntryLot.objects.select_related("lot").order_by("id")
            )
        )
    )


def daily_usage(
    user: CustomUser, *, days: int = 30, today: date | None = None
) -> list[tuple[date, Decimal]]:
    """Credits ``user`` spent on each of the last ``days`` days (oldest first, today last).

    Spent means usage entries (calls and settled holds), in the current time zone; a
    day without any is there with zero, so a chart has a bar for every day. One query.
    """
    last = timezone.localdate() if today is None else today
    first = last - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    rows = (
        LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.CONSUME, created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(spent=Sum("amount"))
        .values_list("day", "spent")
    )
    spent = {day: -amount for day, amount in rows}
    return [
        (day, spent.get(day, ZERO))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]


def entries_page(
    user: CustomUser, *, page: int | str | None = 1, per_page: int = ENTRIES_PER_PAGE
) -> Page[LedgerEntry]:
    """Return one page of ``user``'s history; an out-of-range page gives the nearest one."""
    return Paginator(entries(user), per_page).get_page(page)


def entries_for_reference(user: CustomUser, reference: str) -> QuerySet[LedgerEntry]:
    """Return the entry ``user`` got under ``reference`` and every reversal of it, newest first."""
    if not reference:
        return LedgerEntry.objects.none()
    return entries(user).filter(Q(key=reference) | Q(key__startswith=f"reversal:{reference}:"))


@dataclass(frozen=True)
class GrantUsage:
    """Where the credits of one grant went.

    ``reversed`` were taken back by reversals of the grant (a refund);
    ``spent`` is the rest of what left the lot: consumed or expired. Credits
    that open holds reserve are still in the lot, so count as neither.
    """

    granted: Decimal
    reversed: Decimal
    spent: Decimal


def grant_usage(entries: Iterable[LedgerEntry]) -> GrantUsage | None:
    """Return how a grant's credits went, from ``entries_for_reference``'s entries.

    None when there is no grant among them. Reads only the lot rows those
    entries carry (prefetched by ``entries``), so it makes no query of its own.
    """
    rows = list(entries)
    grant = next((e for e in rows if e.kind == LedgerEntry.Kind.GRANT), None)
    if grant is None:
        return None
    lots = {row.lot_id: row.lot for row in grant.lot_rows.all()}
    granted = sum((lot.amount for lot in lots.values()), ZERO)
    left = sum((lot.remaining for lot in lots.values()), ZERO)
    # A reversal's rows are negative: what it took out of the grant's lot.
    reversed_ = -sum(
        (
            row.amount
            for entry in rows
            if entry.kind == LedgerEntry.Kind.REVERSAL and entry.reverses_id == grant.pk
            for row in entry.lot_rows.all()
            if row.lot_id in lots
        ),
        ZERO,
    )
    return GrantUsage(granted=granted, reversed=reversed_, spent=granted - left - reversed_)


def reversal_of(reference: str, key: str) -> LedgerEntry | None:
    """Return the reversal ``ledger.reverse(reference, key=key)`` wrote, if it did.

    Its ``amount`` is what it took back (negative for a grant) and its
    ``shortfall`` what was already spent and could not be.
    """
    if not reference:
        return None
    return LedgerEntry.objects.filter(key=f"reversal:{reference}:{key}").first()


def entries_for_export(user: CustomUser, *, chunk_size: int = 2000) -> Iterator[LedgerEntry]:
    """Yield every entry of ``user``, oldest first, without loading the history in memory."""
    return (
        LedgerEntry.objects.filter(user=user)
        .order_by("created_at", "id")
        .iterator(chunk_size=chunk_size)
    )


def expiring_lots(*, within: timedelta, now: datetime | None = None) -> QuerySet[CreditLot]:
    """Return live lots of every user expiring within ``within`` that nobody was reminded of."""
    moment = timezone.now() if now is None else now
    return (
        CreditLot.objects.live(moment)
        .filter(expires_at__lte=moment + within, reminder__isnull=True)
        .select_related("user")
        .order_by("user_id", "expires_at", "id")
    )


def totals_by_source(*, start: datetime, end: datetime) -> dict[str, SourceTotals]:
    """Return credits granted and consumed per lot source for entries in [start, end).

    Granted counts grant entries and consumed counts usage (consume entries),
    both gross: reversals, expiries, transfers and adjustments are not netted in.
    """
    rows = (
        LedgerEntryLot.objects.filter(
            entry__created_at__gte=start,
            entry__created_at__lt=end,
            entry__kind__in=[LedgerEntry.Kind.GRANT, LedgerEntry.Kind.CONSUME],
        )
        .values_list("lot__source", "entry__kind")
        .annotate(total=Sum("amount"))
    )
    granted: dict[str, Decimal] = {}
    consumed: dict[str, Decimal] = {}
    for source, kind, total in rows:
        if kind == LedgerEntry.Kind.GRANT:
            granted[source] = total
        else:
            consumed[source] = -total
    return {
        source: SourceTotals(granted=granted.get(source, ZERO), consumed=consumed.get(source, ZERO))
        for source in CreditLot.Source.values
        if source in granted or source in consumed
    }


def hold_is_open(key: str) -> bool:
    """Return whether the hold ``key`` is open: not settled, released or expired yet.

    A background job checks it before it starts: a job whose hold was swept
    must fail without running, since it could no longer be charged.
    """
    return CreditHold.objects.filter(key=key, state=CreditHold.State.OPEN).exists()
