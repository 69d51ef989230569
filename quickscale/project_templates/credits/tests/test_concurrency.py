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
from decimal import Decimal

import pytest
from django.db import connection

from credits import ledger
from credits.exceptions import InsufficientCredits
from credits.models import CreditLot, LedgerEntry
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
