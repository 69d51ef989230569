"""Test helpers: ledger snapshots and the ledger's invariants (holds included)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from credits import ledger
from credits.models import CreditHold, CreditLot, LedgerEntry, LedgerEntryLot
from users.models import CustomUser


def ledger_state() -> tuple[object, ...]:
    """Everything the ledger can change, to compare before and after a refused call."""
    return (
        tuple(
            CreditLot.objects.order_by("id").values_list(
                "id", "amount", "remaining", "held", "converted_into"
            )
        ),
        tuple(LedgerEntry.objects.order_by("id").values_list("id", "amount", "key")),
        LedgerEntryLot.objects.count(),
        tuple(
            CreditHold.objects.order_by("id").values_list(
                "id", "key", "amount", "state", "lot_ids", "lot_amounts"
            )
        ),
    )


def assert_invariants(user: CustomUser, *, at: datetime | None = None) -> None:
    """Check the invariants ``credits/models.py`` states, and that entries sum their lot rows.

    Holds: a lot's ``held`` is the sum of what open holds reserve on it (a
    converted lot's reservations count on the lot it was converted into), a
    hold's reservations sum to its amount, and the balance's reserved part is
    the live lots' held.
    """
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
    moved_to = {lot.pk: lot.converted_into_id or lot.pk for lot in lots}
    held_by_lot: dict[int, Decimal] = {}
    for hold in CreditHold.objects.filter(user=user):
        assert sum(hold.lot_amounts, Decimal(0)) == hold.amount, f"hold {hold.key}"
        assert all(part > 0 for part in hold.lot_amounts), f"hold {hold.key}"
        if hold.state == CreditHold.State.OPEN:
            for lot_id, part in hold.reservations.items():
                held_by_lot[moved_to[lot_id]] = held_by_lot.get(moved_to[lot_id], 0) + part
    for lot in lots:
        assert lot.held == held_by_lot.get(lot.pk, Decimal(0)), f"lot {lot.reference}: held"
        assert Decimal(0) <= lot.held <= lot.remaining
    live_lots = [lot for lot in lots if lot.expires_at is None or lot.expires_at > moment]
    live = sum((lot.remaining for lot in live_lots), Decimal(0))
    reserved = sum((lot.held for lot in live_lots), Decimal(0))
    balance = ledger.balance(user, at=moment)
    assert (balance.total, balance.reserved) == (live, reserved)
    assert balance.available == live - reserved >= 0


def assert_settled(user: CustomUser, *, at: datetime | None = None) -> None:
    """After expire(): entries, lots and balance all agree.

    Credits open holds reserve on expired lots are the one difference: they
    stay for the holds until those close and the next expire() runs.
    """
    moment = timezone.now() if at is None else at
    entries = LedgerEntry.objects.filter(user=user).aggregate(total=Sum("amount"))["total"]
    lots = CreditLot.objects.filter(user=user).aggregate(total=Sum("remaining"))["total"]
    held_on_expired = CreditLot.objects.filter(user=user, expires_at__lte=moment).aggregate(
        total=Sum("held")
    )["total"] or Decimal(0)
    total = ledger.balance(user, at=moment).total
    assert (entries or Decimal(0)) == (lots or Decimal(0)) == total + held_on_expired
    expired_lots = CreditLot.objects.filter(user=user, expires_at__lte=moment)
    assert all(lot.remaining == lot.held for lot in expired_lots)


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
