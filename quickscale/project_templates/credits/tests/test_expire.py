from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import ledger
from credits.models import CreditLot, LedgerEntry
from credits.tests.factories import assert_invariants, assert_settled

pytestmark = pytest.mark.django_db


def test_expire_brings_expired_lots_to_zero_with_one_entry_each(user, other_user):
    now = timezone.now()
    for who, reference in ((user, "in_1"), (other_user, "in_2")):
        ledger.grant(
            who, 10, source="subscription", reference=reference, expires_at=now + timedelta(hours=1)
        )
    ledger.consume(user, 3, reference="use-1")

    assert ledger.expire(now=now + timedelta(hours=2)) == 2

    entry = LedgerEntry.objects.get(user=user, kind="expiry")
    assert entry.amount == Decimal(-7)
    assert CreditLot.objects.filter(remaining__gt=0).count() == 0
    assert_settled(user)
    assert_invariants(user)


def test_expire_run_twice_expires_nothing_the_second_time(user):
    now = timezone.now()
    ledger.grant(
        user, 10, source="subscription", reference="in_1", expires_at=now + timedelta(hours=1)
    )
    later = now + timedelta(hours=2)
    ledger.expire(now=later)
    entries = LedgerEntry.objects.count()

    assert ledger.expire(now=later) == 0
    assert LedgerEntry.objects.count() == entries


def test_expire_leaves_pay_as_you_go_and_unexpired_lots_alone(user):
    now = timezone.now()
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.grant(
        user, 5, source="subscription", reference="in_1", expires_at=now + timedelta(days=5)
    )

    assert ledger.expire(now=now + timedelta(days=1)) == 0
    assert ledger.balance(user).total == Decimal(15)


def test_spend_then_expire_then_renew_gives_the_new_periods_credits_only(user):
    start = timezone.now()
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    ledger.grant(
        user, 100, source="subscription", reference="in_jan", expires_at=start + timedelta(days=30)
    )
    ledger.consume(user, 60, reference="use-1")
    renewal = start + timedelta(days=30)

    assert ledger.expire(now=renewal) == 1
    ledger.grant(
        user,
        100,
        source="subscription",
        reference="in_feb",
        expires_at=renewal + timedelta(days=30),
    )

    balance = ledger.balance(user, at=renewal)
    assert (balance.subscription, balance.pay_as_you_go, balance.total) == (
        Decimal(100),
        Decimal(5),
        Decimal(105),
    )
    assert_settled(user, at=renewal)
    assert_invariants(user, at=renewal)


def test_an_expired_lot_stops_counting_before_expire_runs(user):
    now = timezone.now()
    ledger.grant(
        user, 10, source="subscription", reference="in_1", expires_at=now + timedelta(hours=1)
    )

    assert ledger.balance(user, at=now + timedelta(hours=1)).total == Decimal(0)
    assert CreditLot.objects.get().remaining == Decimal(10)


# --------------------------------------------------------------------------- holds


def test_expire_leaves_what_open_holds_reserve_until_they_close(user):
    now = timezone.now()
    ledger.grant(
        user, 10, source="subscription", reference="in_1", expires_at=now + timedelta(hours=1)
    )
    ledger.hold(user, 6, key="call-1", expires_at=now + timedelta(hours=3))
    later = now + timedelta(hours=2)

    assert ledger.expire(now=later) == 1

    lot = CreditLot.objects.get()
    assert (lot.remaining, lot.held) == (Decimal(6), Decimal(6))
    assert LedgerEntry.objects.get(kind="expiry").amount == Decimal(-4)
    assert ledger.balance(user, at=later).total == Decimal(0)  # an expired lot never counts
    assert ledger.expire(now=later) == 0  # nothing it may expire is left
    assert_settled(user, at=later)
    assert_invariants(user, at=later)

    ledger.release("call-1")
    assert ledger.expire(now=later) == 1  # what the hold freed expires with the lot
    assert CreditLot.objects.get().remaining == Decimal(0)
    assert_settled(user, at=later)
