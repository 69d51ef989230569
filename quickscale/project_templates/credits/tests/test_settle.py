"""settle(): charges what a held call cost, takes an excess or records a shortfall, once a key."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import ledger
from credits.exceptions import (
    HoldReleased,
    InvalidAmount,
    InvalidReference,
    ReferenceConflict,
    UnknownHold,
)
from credits.models import CreditHold, CreditLot, LedgerEntry, LedgerEntryLot
from credits.tests.factories import INVALID_AMOUNTS, assert_invariants, ledger_state
from users.models import CustomUser

pytestmark = pytest.mark.django_db


def _soon() -> datetime:
    return timezone.now() + timedelta(hours=1)


def _lots() -> dict[str, tuple[Decimal, Decimal]]:
    return {lot.reference: (lot.remaining, lot.held) for lot in CreditLot.objects.all()}


def test_settling_below_the_hold_charges_the_cost_and_frees_the_rest(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", description="Chat", expires_at=_soon())

    entry = ledger.settle("call-1", amount=Decimal("2.50"))

    assert entry is not None
    assert (entry.kind, entry.amount, entry.shortfall, entry.key, entry.label) == (
        "consume",
        Decimal("-2.50"),
        Decimal(0),
        "call-1",
        "Chat",
    )
    assert entry == LedgerEntry.objects.get(key="call-1")
    assert _lots() == {"cs_1": (Decimal("7.50"), Decimal(0))}
    hold = CreditHold.objects.get(key="call-1")
    assert hold.state == "settled"
    assert hold.closed_at is not None
    balance = ledger.balance(user)
    assert (balance.total, balance.reserved, balance.available) == (
        Decimal("7.50"),
        Decimal(0),
        Decimal("7.50"),
    )
    assert_invariants(user)


def test_the_charge_comes_from_the_lots_the_hold_reserved_in_spending_order(user):
    soon = timezone.now() + timedelta(days=3)
    ledger.grant(user, 3, source="subscription", reference="in_1", expires_at=soon)
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 5, key="call-1", expires_at=_soon())  # 3 from in_1, 2 from cs_1

    entry = ledger.settle("call-1", amount=4)

    assert entry is not None
    rows = dict(LedgerEntryLot.objects.filter(entry=entry).values_list("lot__reference", "amount"))
    assert rows == {"in_1": Decimal(-3), "cs_1": Decimal(-1)}
    assert _lots() == {"in_1": (Decimal(0), Decimal(0)), "cs_1": (Decimal(9), Decimal(0))}
    assert_invariants(user)


def test_an_excess_above_the_hold_is_taken_from_available_credits(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.grant(user, 5, source="admin", reference="staff-1")
    ledger.hold(user, 4, key="call-1", expires_at=_soon())

    entry = ledger.settle("call-1", amount=Decimal("12.50"))

    assert entry is not None
    assert (entry.amount, entry.shortfall) == (Decimal("-12.50"), Decimal(0))
    assert ledger.balance(user).total == Decimal("2.50")
    assert_invariants(user)


def test_an_excess_leaves_other_holds_reservations_alone(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 4, key="call-1", expires_at=_soon())
    ledger.hold(user, 5, key="call-2", expires_at=_soon())

    entry = ledger.settle("call-1", amount=8)

    # call-2's five stay reserved: call-1 gets its four and the one credit not held.
    assert entry is not None
    assert (entry.amount, entry.shortfall) == (Decimal(-5), Decimal(3))
    assert _lots() == {"cs_1": (Decimal(5), Decimal(5))}
    assert ledger.settle("call-2", amount=5) is not None
    assert ledger.balance(user).total == Decimal(0)
    assert_invariants(user)


def test_an_excess_beyond_the_balance_is_recorded_as_shortfall_never_below_zero(user):
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    ledger.hold(user, 4, key="call-1", expires_at=_soon())

    entry = ledger.settle("call-1", amount=9)

    assert entry is not None
    assert (entry.amount, entry.shortfall) == (Decimal(-5), Decimal(4))
    assert ledger.balance(user).total == Decimal(0)
    assert min(CreditLot.objects.values_list("remaining", flat=True)) == Decimal(0)
    assert_invariants(user)


def test_a_sub_cent_cost_is_rounded_up_to_the_next_cent(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 1, key="call-1", expires_at=_soon())

    entry = ledger.settle("call-1", amount=Decimal("0.123456"))

    assert entry is not None
    assert entry.amount == Decimal("-0.13")
    assert ledger.balance(user).total == Decimal("9.87")


def test_settling_zero_is_a_release(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=_soon())

    assert ledger.settle("call-1", amount=0) is None

    hold = CreditHold.objects.get(key="call-1")
    assert hold.state == "released"
    assert not LedgerEntry.objects.filter(key="call-1").exists()
    assert ledger.balance(user).available == Decimal(10)
    assert_invariants(user)


def test_settling_twice_charges_once_and_returns_the_first_entry(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=_soon())
    first = ledger.settle("call-1", amount=2)
    before = ledger_state()

    again = ledger.settle("call-1", amount=5)

    assert again is not None and first is not None
    assert (again.pk, again.amount) == (first.pk, Decimal(-2))
    assert ledger_state() == before


def test_a_settled_call_is_refunded_by_reversing_its_key(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=_soon())
    ledger.settle("call-1", amount=4)

    refund = ledger.reverse("call-1", reason="the call failed after all")

    assert refund.amount == Decimal(4)
    assert ledger.balance(user).total == Decimal(10)
    assert_invariants(user)


def test_settling_an_unknown_key_is_a_clear_error_and_changes_nothing(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 1, reference="use-1")  # a consume's key is not a hold's
    before = ledger_state()

    for key in ("never-held", "use-1"):
        with pytest.raises(UnknownHold, match=key):
            ledger.settle(key, amount=1)

    assert ledger_state() == before


@pytest.mark.parametrize("how", ["released", "expired"])
def test_settling_a_hold_already_released_or_expired_charges_nothing(user: CustomUser, how: str):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=_soon())
    if how == "released":
        ledger.release("call-1")
    else:
        ledger.release_expired_holds(now=timezone.now() + timedelta(hours=2))
    before = ledger_state()

    with pytest.raises(HoldReleased, match="nothing was charged") as refused:
        ledger.settle("call-1", amount=2)

    assert refused.value.state == how
    assert ledger.settle("call-1", amount=0) is None  # a release of it is no error
    assert ledger_state() == before


def test_a_key_a_consume_took_meanwhile_leaves_the_hold_open_to_release(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=_soon())
    ledger.consume(user, 1, reference="call-1")  # misuse: a hold's key reused as a reference
    before = ledger_state()

    with pytest.raises(ReferenceConflict):
        ledger.settle("call-1", amount=2)

    assert ledger_state() == before
    ledger.release("call-1")
    assert ledger.balance(user).available == Decimal(9)
    assert_invariants(user)


def test_a_hold_on_a_lot_that_expired_meanwhile_can_still_be_settled(user):
    """Its credits were reserved while the lot was live; what is freed expires with the lot."""
    now = timezone.now()
    tomorrow = now + timedelta(days=1)
    ledger.grant(user, 10, source="subscription", reference="in_1", expires_at=tomorrow)
    ledger.hold(user, 6, key="call-1", expires_at=now + timedelta(days=2))
    later = now + timedelta(days=1, hours=1)
    ledger.expire(now=later)  # expires the 4 not held; the 6 held stay for the hold
    assert _lots() == {"in_1": (Decimal(6), Decimal(6))}

    entry = ledger.settle("call-1", amount=5)

    assert entry is not None
    assert entry.amount == Decimal(-5)
    assert _lots() == {"in_1": (Decimal(1), Decimal(0))}
    assert ledger.expire(now=later) == 1
    assert _lots() == {"in_1": (Decimal(0), Decimal(0))}
    assert_invariants(user, at=later)


@pytest.mark.parametrize(
    "amount",
    [value for name, value in INVALID_AMOUNTS.items() if name not in ("zero", "three places")],
    ids=[name for name in INVALID_AMOUNTS if name not in ("zero", "three places")],
)
def test_an_invalid_amount_is_refused_and_changes_nothing(user, amount):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=_soon())
    before = ledger_state()

    with pytest.raises(InvalidAmount):
        ledger.settle("call-1", amount=amount)

    assert ledger_state() == before


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "reversal:cs_1:x"])
def test_an_invalid_key_is_refused_by_settle_and_release(user, key):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(InvalidReference):
        ledger.settle(key, amount=1)
    with pytest.raises(InvalidReference):
        ledger.release(key)

    assert ledger_state() == before
