"""Test helpers: ledger snapshots and the ledger's invariants."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from credits import ledger
from credits.models import CreditLot, LedgerEntry, LedgerEntryLot
from users.models import CustomUser


def ledger_state() -> tuple[object, ...]:
    """Everything the ledger can change, to compare before and after a refused call."""
    return (
        tuple(CreditLot.objects.order_by("id").values_list("id", "amount", "remaining")),
        tuple(LedgerEntry.objects.order_by("id").values_list("id", "amount", "key")),
        LedgerEntryLot.objects.count(),
    )


def assert_invariants(user: CustomUser, *, at: datetime | None = None) -> None:
    """Check the invariants ``credits/models.py`` states, and that entries sum their lot rows."""
    moment = timezone.now() if at is None else at
    lots = list(CreditLot.objects.filter(user=user))
    by_lot = dict(
        LedgerEntryLot.objects.filter(lot__user=user).values_list("lot_id").annotate(Sum("amount"))
    )
    for lot in lots:
        rows = by_lot.get(lot.pk, Decimal(0))
        assert rows == lot.remaining, (
            f"lot {lot.reference}: rows {rows} != remaining {lot.remaining}"
        )
        assert Decimal(0) <= lot.remaining <= lot.amount
    by_entry = dict(
        LedgerEntryLot.objects.filter(entry__user=user)
        .values_list("entry_id")
        .annotate(Sum("amount"))
    )
    for entry_id, key, amount in LedgerEntry.objects.filter(user=user).values_list(
        "id", "key", "amount"
    ):
        rows = by_entry.get(entry_id, Decimal(0))
        assert rows == amount, f"entry {key}: rows {rows} != amount {amount}"
    live = sum(
        (lot.remaining for lot in lots if lot.expires_at is None or lot.expires_at > moment),
        Decimal(0),
    )
    assert ledger.balance(user, at=moment).total == live


def assert_settled(user: CustomUser, *, at: datetime | None = None) -> None:
    """After expire(): entries, lots and balance all agree."""
    entries = LedgerEntry.objects.filter(user=user).aggregate(total=Sum("amount"))["total"]
    lots = CreditLot.objects.filter(user=user).aggregate(total=Sum("remaining"))["total"]
    total = ledger.balance(user, at=at).total
    assert (entries or Decimal(0)) == (lots or Decimal(0)) == total


# Amounts every ledger function must refuse with InvalidAmount, with a readable id.
INVALID_AMOUNTS = {
    "zero": Decimal("0"),
    "negative": Decimal("-5"),
    "three places": Decimal("1.005"),
    "float": 1.5,
    "nan": Decimal("NaN"),
    "infinity": Decimal("Infinity"),
    "absurdly large": Decimal("1e15"),
    "bool": True,
    "string": "10",
    "none": None,
}
