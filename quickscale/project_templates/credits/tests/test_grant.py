from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from credits import ledger
from credits.exceptions import InvalidAmount, InvalidReference, InvalidSource, ReferenceConflict
from credits.models import CreditLot, LedgerEntry
from credits.tests.factories import INVALID_AMOUNTS, assert_invariants, ledger_state

pytestmark = pytest.mark.django_db


def test_grant_creates_a_lot_and_one_grant_entry_for_the_amount(user):
    lot = ledger.grant(user, Decimal("25.50"), source="purchase", reference="cs_1")

    assert (lot.amount, lot.remaining, lot.expires_at) == (Decimal("25.50"), Decimal("25.50"), None)
    entry = LedgerEntry.objects.get(user=user)
    assert (entry.kind, entry.amount, entry.key) == ("grant", Decimal("25.50"), "cs_1")
    assert list(entry.lots.all()) == [lot]
    assert ledger.balance(user).total == Decimal("25.50")
    assert_invariants(user)


def test_grant_accepts_an_int_and_stores_two_places(user):
    lot = ledger.grant(user, 10, source="admin", reference="admin-1")

    lot.refresh_from_db()
    assert lot.amount == Decimal("10.00")


def test_grant_twice_with_same_reference_grants_once_and_returns_the_first_lot(user):
    first = ledger.grant(user, Decimal(10), source="purchase", reference="cs_1")
    before = ledger_state()

    again = ledger.grant(user, Decimal(10), source="purchase", reference="cs_1")

    assert again.pk == first.pk
    assert ledger_state() == before
    assert ledger.balance(user).total == Decimal(10)


def test_subscription_lot_gets_the_subscription_priority_and_keeps_its_price(user):
    end = timezone.now() + timedelta(days=30)
    lot = ledger.grant(
        user,
        Decimal(100),
        source="subscription",
        reference="in_1",
        expires_at=end,
        price_id="price_pro",
    )

    assert lot.priority < ledger.grant(user, 1, source="purchase", reference="cs_2").priority
    assert (lot.expires_at, lot.price_id) == (end, "price_pro")
    assert ledger.balance(user).subscription == Decimal(100)


@pytest.mark.parametrize("amount", INVALID_AMOUNTS.values(), ids=INVALID_AMOUNTS.keys())
def test_grant_refuses_an_invalid_amount_and_changes_nothing(user, amount):
    before = ledger_state()

    with pytest.raises(InvalidAmount):
        ledger.grant(user, amount, source="purchase", reference="cs_1")

    assert ledger_state() == before


def test_grant_refuses_an_unknown_source_and_changes_nothing(user):
    before = ledger_state()

    with pytest.raises(InvalidSource):
        ledger.grant(user, 5, source="gift", reference="g-1")

    assert ledger_state() == before


@pytest.mark.parametrize("reference", ["", "   ", "x" * 256, "reversal:abc", "expiry:1:1", None])
def test_grant_refuses_an_unusable_reference_and_changes_nothing(user, reference):
    before = ledger_state()

    with pytest.raises(InvalidReference):
        ledger.grant(user, 5, source="purchase", reference=reference)

    assert ledger_state() == before


def test_grant_with_the_reference_of_another_users_grant_raises_conflict(user, other_user):
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(ReferenceConflict):
        ledger.grant(other_user, 5, source="purchase", reference="cs_1")

    assert ledger_state() == before


def test_grant_with_the_reference_of_a_consume_raises_conflict(user):
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    ledger.consume(user, 1, reference="usage-1")
    before = ledger_state()

    with pytest.raises(ReferenceConflict):
        ledger.grant(user, 5, source="purchase", reference="usage-1")

    assert ledger_state() == before


def test_a_racing_duplicate_grant_returns_the_first_lot_and_leaves_the_callers_transaction_usable(
    user,
):
    """Simulate losing the race: the early check misses, the insert hits the unique index."""
    first = ledger.grant(user, 5, source="purchase", reference="cs_1")
    real_replayed = ledger._replayed
    calls = []

    def miss_once(*args, **kwargs):
        calls.append(1)
        return None if len(calls) == 1 else real_replayed(*args, **kwargs)

    with transaction.atomic(), mock.patch.object(ledger, "_replayed", miss_once):
        again = ledger.grant(user, 5, source="purchase", reference="cs_1")
        with connection.cursor() as cursor:  # the outer transaction still works
            cursor.execute("SELECT 1")

    assert again.pk == first.pk
    assert CreditLot.objects.count() == 1
    assert_invariants(user)
