"""Pages of possibly huge tables at a fixed cost: the count stops at ``COUNT_CAP``.

Django's ``Paginator`` counts every matching row; on a table of millions that
count costs more than the page. ``capped_page`` counts at most ``COUNT_CAP + 1``
rows, so a page costs the same whether the table holds a thousand rows or
millions, and says "1,000+" beyond the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from django.db.models import Model, QuerySet

COUNT_CAP = 1000
PER_PAGE = 25
MAX_PAGE = 10_000

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
    return min(max(number, 1), MAX_PAGE)


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
