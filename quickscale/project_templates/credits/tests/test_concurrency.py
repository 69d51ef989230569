"""Races between real connections.

These tests use ``django_db(transaction=True)``: each thread needs its own
connection and must see what the others commit, and ``SELECT ... FOR UPDATE``
only blocks across transactions that really commit. Inside the default
per-test transaction the threads could not see each other's rows at all.
Every thread closes its connection when done so the test database can be
dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from credits import ledger
from credits.exceptions import HoldReleased, InsufficientCredits
from credits.models import CreditHold, CreditLot, LedgerEntry
from credits.tests.factories import assert_invariants
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _race(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released together; return results or exceptions."""
    barrier = threading.Barrier(count)

    def run(i: int) -> object:
        try:
            barrier.wait()
            return work(i)
        except Exception as error:
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_twenty_concurrent_spends_of_ten_from_one_hundred_let_exactly_ten_through():
    """The row locks serialize the spends: never a credit taken twice, never below zero."""
    user = make_user()
    ledger.grant(user, 40, source="subscription", reference="in_1")
    ledger.grant(user, 60, source="purchase", reference="cs_1")

    results = _race(20, lambda i: ledger.consume(user, 10, reference=f"use-{i}"))

    succeeded = [r for r in results if isinstance(r, LedgerEntry)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(succeeded), len(refused)) == (10, 10), results
    assert ledger.balance(user).total == Decimal(0)
    assert min(CreditLot.objects.values_list("remaining", flat=True)) == Decimal(0)
    assert_invariants(user)


def test_concurrent_spends_with_one_reference_charge_once():
    user = make_user()
    ledger.grant(user, 100, source="purchase", reference="cs_1")

    results = _race(8, lambda i: ledger.consume(user, 10, reference="use-same"))

    assert {r.pk for r in results if isinstance(r, LedgerEntry)} == {
        LedgerEntry.objects.get(key="use-same").pk
    }
    assert ledger.balance(user).total == Decimal(90)


def test_concurrent_reversals_of_one_reference_reverse_once():
    user = make_user()
    ledger.grant(user, 100, source="purchase", reference="cs_1")
    ledger.consume(user, 30, reference="use-1")

    results = _race(10, lambda i: ledger.reverse("use-1", reason="service failed"))

    assert all(isinstance(r, LedgerEntry) for r in results), results
    assert LedgerEntry.objects.filter(kind="reversal").count() == 1
    assert ledger.balance(user).total == Decimal(100)
    assert_invariants(user)


def test_concurrent_partial_reversals_with_different_keys_never_exceed_the_original():
    user = make_user()
    ledger.grant(user, 100, source="purchase", reference="cs_1")
    ledger.consume(user, 30, reference="use-1")

    results = _race(10, lambda i: ledger.reverse("use-1", amount=5, key=f"re_{i}", reason="refund"))

    assert sum(isinstance(r, LedgerEntry) for r in results) == 6
    assert ledger.balance(user).total == Decimal(100)
    assert_invariants(user)


def test_concurrent_grants_with_one_reference_grant_once():
    user = make_user()

    results = _race(8, lambda i: ledger.grant(user, 10, source="purchase", reference="cs_same"))

    assert {r.pk for r in results if isinstance(r, CreditLot)} == {CreditLot.objects.get().pk}
    assert ledger.balance(user).total == Decimal(10)


# --------------------------------------------------------------------------- holds


def _soon() -> datetime:
    return timezone.now() + timedelta(hours=1)


def test_twenty_concurrent_holds_and_consumes_of_ten_from_one_hundred_let_exactly_ten_through():
    """Holds and consumes lock the same lots in the same order: never a credit given twice."""
    user = make_user()
    ledger.grant(user, 40, source="subscription", reference="in_1", expires_at=_soon())
    ledger.grant(user, 60, source="purchase", reference="cs_1")

    def hold_or_consume(i: int) -> object:
        if i % 2:
            return ledger.consume(user, 10, reference=f"use-{i}")
        return ledger.hold(user, 10, key=f"call-{i}", expires_at=_soon())

    results = _race(20, hold_or_consume)

    granted = [r for r in results if isinstance(r, LedgerEntry | CreditHold)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(granted), len(refused)) == (10, 10), results
    holds = [r for r in results if isinstance(r, CreditHold)]
    balance = ledger.balance(user)
    assert (balance.reserved, balance.available) == (Decimal(10 * len(holds)), Decimal(0))
    assert_invariants(user)

    # Each settles above its hold: nothing is available, so the excess is shortfall.
    settled = _race(len(holds), lambda i: ledger.settle(holds[i].key, amount=15))

    assert all(isinstance(r, LedgerEntry) for r in settled), settled
    assert {(r.amount, r.shortfall) for r in settled if isinstance(r, LedgerEntry)} <= {
        (Decimal(-10), Decimal(5))
    }
    assert ledger.balance(user).total == Decimal(0)
    assert min(CreditLot.objects.values_list("remaining", flat=True)) == Decimal(0)
    assert_invariants(user)


def test_concurrent_settles_with_an_excess_and_consumes_never_overspend():
    user = make_user()
    ledger.grant(user, 100, source="purchase", reference="cs_1")
    for i in range(5):
        ledger.hold(user, 10, key=f"call-{i}", expires_at=_soon())

    def settle_or_consume(i: int) -> object:
        if i < 5:
            return ledger.settle(f"call-{i}", amount=15)
        return ledger.consume(user, 5, reference=f"use-{i}")

    results = _race(15, settle_or_consume)

    entries = [r for r in results if isinstance(r, LedgerEntry)]
    assert all(isinstance(r, LedgerEntry | InsufficientCredits) for r in results), results
    taken = -sum((entry.amount for entry in entries), Decimal(0))
    assert taken == Decimal(100) - ledger.balance(user).total
    assert taken <= Decimal(100)
    settles = [entry for entry in entries if entry.key.startswith("call-")]
    assert len(settles) == 5
    assert all(entry.amount - entry.shortfall == Decimal(-15) for entry in settles)
    assert ledger.balance(user).reserved == Decimal(0)
    assert_invariants(user)


def test_a_settle_and_a_release_of_one_hold_racing_close_it_once():
    user = make_user()
    ledger.grant(user, 100, source="purchase", reference="cs_1")
    ledger.hold(user, 10, key="call-1", expires_at=_soon())

    results = _race(
        10, lambda i: ledger.settle("call-1", amount=7) if i % 2 else ledger.release("call-1")
    )

    state = CreditHold.objects.get(key="call-1").state
    charges = LedgerEntry.objects.filter(kind="consume").count()
    if state == "settled":
        assert charges == 1 and ledger.balance(user).total == Decimal(93)
        assert all(r is None or isinstance(r, LedgerEntry) for r in results), results
    else:
        assert state == "released" and charges == 0
        assert all(r is None or isinstance(r, HoldReleased) for r in results), results
        assert ledger.balance(user).total == Decimal(100)
    assert ledger.balance(user).reserved == Decimal(0)
    assert_invariants(user)


def test_concurrent_holds_with_one_key_reserve_once():
    user = make_user()
    ledger.grant(user, 100, source="purchase", reference="cs_1")

    results = _race(8, lambda i: ledger.hold(user, 10, key="call-same", expires_at=_soon()))

    assert {r.pk for r in results if isinstance(r, CreditHold)} == {CreditHold.objects.get().pk}
    assert ledger.balance(user).reserved == Decimal(10)
    assert_invariants(user)


def test_settles_racing_a_plan_conversion_charge_the_lots_the_credits_are_in():
    """Conversion moves reservations under the lots' locks; settles waiting on them follow."""
    user = make_user()
    ledger.grant(user, 100, source="subscription", reference="in_1", expires_at=_soon())
    for i in range(9):
        ledger.hold(user, 10, key=f"call-{i}", expires_at=_soon())

    def settle_or_convert(i: int) -> object:
        if i == 9:
            return ledger.convert_subscription_credits(user, reference="convert-in_2")
        return ledger.settle(f"call-{i}", amount=4 if i % 2 else 12)

    results = _race(10, settle_or_convert)

    assert all(isinstance(r, LedgerEntry) for r in results), results
    charged = LedgerEntry.objects.filter(kind="consume")
    assert sum(entry.shortfall - entry.amount for entry in charged) == Decimal(4 * 4 + 5 * 12)
    assert ledger.balance(user).reserved == Decimal(0)
    assert ledger.balance(user).total + sum(-e.amount for e in charged) == Decimal(100)
    assert_invariants(user)
