"""hold(): reserves available credits in spending order, refuses what is not there, once per key."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import ledger
from credits.exceptions import (
    InsufficientCredits,
    InvalidAmount,
    InvalidHoldExpiry,
    InvalidReference,
    ReferenceConflict,
)
from credits.models import CreditHold, CreditLot, LedgerEntry
from credits.tests.factories import INVALID_AMOUNTS, assert_invariants, ledger_state
from users.models import CustomUser

pytestmark = pytest.mark.django_db


def _soon() -> datetime:
    return timezone.now() + timedelta(hours=1)


def _held(reference: str) -> tuple[Decimal, Decimal]:
    lot = CreditLot.objects.get(reference=reference)
    return lot.remaining, lot.held


def test_a_hold_reserves_credits_without_spending_them(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")

    hold = ledger.hold(user, 4, key="call-1", description="Chat", expires_at=_soon())

    assert (hold.state, hold.amount, hold.description) == ("open", Decimal(4), "Chat")
    assert hold == CreditHold.objects.get(key="call-1")
    assert _held("cs_1") == (Decimal(10), Decimal(4))
    assert ledger.balance(user) == ledger.Balance(
        subscription=Decimal(0),
        pay_as_you_go=Decimal(10),
        total=Decimal(10),
        reserved=Decimal(4),
        available=Decimal(6),
    )
    # Not money moved: the history shows nothing until the hold is settled.
    assert LedgerEntry.objects.filter(kind="consume").count() == 0
    assert_invariants(user)


def test_a_hold_reserves_in_spending_order_across_lots(user):
    ledger.grant(
        user,
        3,
        source="subscription",
        reference="in_1",
        expires_at=timezone.now() + timedelta(days=2),
    )
    ledger.grant(user, 10, source="purchase", reference="cs_1")

    hold = ledger.hold(user, 5, key="call-1", expires_at=_soon())

    lots = dict(CreditLot.objects.values_list("pk", "reference"))
    reserved = {lots[lot_id]: part for lot_id, part in hold.reservations.items()}
    assert reserved == {"in_1": Decimal(3), "cs_1": Decimal(2)}
    assert CreditHold.objects.get(key="call-1").reservations == hold.reservations
    assert_invariants(user)


def test_a_hold_above_the_available_balance_is_refused_and_changes_nothing(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 7, key="call-1", expires_at=_soon())
    before = ledger_state()

    with pytest.raises(InsufficientCredits) as refused:
        ledger.hold(user, 4, key="call-2", expires_at=_soon())

    assert (refused.value.required, refused.value.available) == (Decimal(4), Decimal(3))
    assert ledger_state() == before
    assert not CreditHold.objects.filter(key="call-2").exists()


def test_a_hold_cannot_reserve_credits_of_an_expired_lot(user):
    now = timezone.now()
    ledger.grant(user, 10, source="subscription", reference="in_1", expires_at=now)
    before = ledger_state()

    with pytest.raises(InsufficientCredits):
        ledger.hold(user, 1, key="call-1", expires_at=_soon())

    assert ledger_state() == before


def test_the_same_key_twice_reserves_once_and_returns_the_first_hold(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    first = ledger.hold(user, 4, key="call-1", expires_at=_soon())
    before = ledger_state()

    again = ledger.hold(user, 9, key="call-1", expires_at=_soon())

    assert (again.pk, again.amount) == (first.pk, Decimal(4))
    assert ledger_state() == before


def test_a_repeat_after_the_hold_closed_returns_it_closed_and_reserves_nothing(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 4, key="call-1", expires_at=_soon())
    ledger.settle("call-1", amount=3)
    before = ledger_state()

    again = ledger.hold(user, 4, key="call-1", expires_at=_soon())

    assert again.state == "settled"
    assert ledger_state() == before


def test_a_key_of_another_users_hold_is_a_conflict(user, other_user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.grant(other_user, 10, source="purchase", reference="cs_2")
    ledger.hold(other_user, 4, key="call-1", expires_at=_soon())
    before = ledger_state()

    with pytest.raises(ReferenceConflict):
        ledger.hold(user, 4, key="call-1", expires_at=_soon())

    assert ledger_state() == before


@pytest.mark.parametrize("key", ["cs_1", "use-1"], ids=["a grant's", "a consume's"])
def test_a_key_a_ledger_entry_has_is_a_conflict(user: CustomUser, key: str):
    """The settle entry takes the hold's key, so a key already in the ledger cannot be held."""
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 1, reference="use-1")
    before = ledger_state()

    with pytest.raises(ReferenceConflict):
        ledger.hold(user, 4, key=key, expires_at=_soon())

    assert ledger_state() == before


@pytest.mark.parametrize(
    ("asked", "held"),
    [
        (Decimal("0.001"), Decimal("0.01")),
        (Decimal("2.0001"), Decimal("2.01")),
        (Decimal("2.015"), Decimal("2.02")),
        (Decimal("2.01"), Decimal("2.01")),
        (2, Decimal("2.00")),
    ],
)
def test_a_sub_cent_amount_is_rounded_up_to_the_next_cent(user, asked, held):
    ledger.grant(user, 10, source="purchase", reference="cs_1")

    hold = ledger.hold(user, asked, key="call-1", expires_at=_soon())

    assert hold.amount == held
    assert CreditHold.objects.get(key="call-1").amount == held
    assert_invariants(user)


@pytest.mark.parametrize(
    "amount",
    [value for name, value in INVALID_AMOUNTS.items() if name != "three places"],
    ids=[name for name in INVALID_AMOUNTS if name != "three places"],
)
def test_an_invalid_amount_is_refused_and_changes_nothing(user, amount):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(InvalidAmount):
        ledger.hold(user, amount, key="call-1", expires_at=_soon())

    assert ledger_state() == before


@pytest.mark.parametrize(
    "expires_at",
    [
        pytest.param(lambda: timezone.now() - timedelta(seconds=1), id="past"),
        pytest.param(lambda: timezone.now().replace(tzinfo=None) + timedelta(hours=1), id="naive"),
    ],
)
def test_an_expiry_that_is_not_an_aware_future_moment_is_refused(user, expires_at):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(InvalidHoldExpiry):
        ledger.hold(user, 1, key="call-1", expires_at=expires_at())

    assert ledger_state() == before


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "reversal:cs_1:x", "expiry:1:1"])
def test_an_invalid_key_is_refused(user, key):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(InvalidReference):
        ledger.hold(user, 1, key=key, expires_at=_soon())

    assert ledger_state() == before
