from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import ledger
from credits.exceptions import (
    InvalidAmount,
    MissingReason,
    NotReversible,
    ReversalExceedsOriginal,
    UnknownReference,
)
from credits.models import CreditLot
from credits.tests.factories import assert_invariants, assert_settled, ledger_state

pytestmark = pytest.mark.django_db


def _remaining(*lots: CreditLot) -> tuple[Decimal, ...]:
    return tuple(CreditLot.objects.get(pk=lot.pk).remaining for lot in lots)


def test_reversing_a_consume_returns_the_credits_to_the_lots_they_came_from(user, staff):
    sub = ledger.grant(
        user,
        5,
        source="subscription",
        reference="in_1",
        expires_at=timezone.now() + timedelta(days=30),
    )
    payg = ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 8, reference="use-1")

    entry = ledger.reverse("use-1", reason="service failed", actor=staff)

    assert _remaining(sub, payg) == (Decimal(5), Decimal(10))
    assert (entry.kind, entry.amount, entry.shortfall) == ("reversal", Decimal(8), Decimal(0))
    assert entry.reverses is not None
    assert (entry.reason, entry.actor, entry.reverses.key) == ("service failed", staff, "use-1")
    assert_invariants(user)


def test_a_partial_consume_reversal_returns_the_last_taken_credits_first(user):
    sub = ledger.grant(
        user,
        5,
        source="subscription",
        reference="in_1",
        expires_at=timezone.now() + timedelta(days=30),
    )
    payg = ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 8, reference="use-1")

    ledger.reverse("use-1", amount=Decimal(2), key="part-1", reason="partial refund")

    assert _remaining(sub, payg) == (Decimal(0), Decimal(9))
    ledger.reverse("use-1", reason="rest")
    assert _remaining(sub, payg) == (Decimal(5), Decimal(10))
    assert_invariants(user)


def test_reversing_twice_with_the_same_key_reverses_once(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 4, reference="use-1")
    first = ledger.reverse("use-1", amount=2, key="re_1", reason="refund")
    before = ledger_state()

    again = ledger.reverse("use-1", amount=2, key="re_1", reason="refund")

    assert again.pk == first.pk
    assert ledger_state() == before


def test_a_full_reversal_repeated_without_a_key_reverses_once(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 4, reference="use-1")
    first = ledger.reverse("use-1", reason="refund")

    assert ledger.reverse("use-1", reason="refund").pk == first.pk
    assert ledger.balance(user).total == Decimal(10)


def test_reversing_more_than_is_left_raises_and_changes_nothing(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 4, reference="use-1")
    ledger.reverse("use-1", amount=3, key="re_1", reason="refund")
    before = ledger_state()

    with pytest.raises(ReversalExceedsOriginal):
        ledger.reverse("use-1", amount=2, key="re_2", reason="refund")

    assert ledger_state() == before


def test_reversing_an_unspent_grant_takes_the_whole_lot_back(user):
    lot = ledger.grant(user, 10, source="purchase", reference="cs_1")

    entry = ledger.reverse("cs_1", reason="payment refunded")

    assert _remaining(lot) == (Decimal(0),)
    assert (entry.amount, entry.shortfall) == (Decimal(-10), Decimal(0))
    assert ledger.balance(user).total == Decimal(0)
    assert_invariants(user)


def test_partial_then_full_reversal_of_a_partly_spent_grant_takes_back_only_the_unspent_part(user):
    lot = ledger.grant(user, 100, source="purchase", reference="cs_1")
    ledger.consume(user, 60, reference="use-1")

    partial = ledger.reverse("cs_1", amount=30, key="re_1", reason="partial refund")
    full = ledger.reverse("cs_1", reason="refund the rest")

    assert (partial.amount, partial.shortfall) == (Decimal(-30), Decimal(0))
    # 70 were still to reverse, only 10 were unspent: 60 is the shortfall staff see.
    assert (full.amount, full.shortfall) == (Decimal(-10), Decimal(60))
    assert _remaining(lot) == (Decimal(0),)
    assert ledger.balance(user).total == Decimal(0)
    with pytest.raises(ReversalExceedsOriginal):
        ledger.reverse("cs_1", key="re_3", reason="again")
    assert_invariants(user)


def test_reversing_a_fully_spent_grant_records_the_whole_amount_as_shortfall(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 10, reference="use-1")

    entry = ledger.reverse("cs_1", reason="chargeback")

    assert (entry.amount, entry.shortfall) == (Decimal(0), Decimal(10))
    assert ledger.balance(user).total == Decimal(0)
    assert_invariants(user)


def test_reversing_an_unknown_reference_raises_and_changes_nothing(user):
    before = ledger_state()

    with pytest.raises(UnknownReference):
        ledger.reverse("nope", reason="refund")

    assert ledger_state() == before


def test_a_reversal_needs_a_reason(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(MissingReason):
        ledger.reverse("cs_1", reason=" ")

    assert ledger_state() == before


def test_a_reversal_refuses_an_invalid_amount(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(InvalidAmount):
        ledger.reverse("cs_1", amount=Decimal("-1"), reason="refund")

    assert ledger_state() == before


def test_a_transfer_cannot_be_reversed(user):
    ledger.grant(
        user,
        10,
        source="subscription",
        reference="in_1",
        expires_at=timezone.now() + timedelta(days=3),
        price_id="price_a",
    )
    ledger.convert_subscription_credits(user, reference="convert-1")
    before = ledger_state()

    with pytest.raises(NotReversible):
        ledger.reverse("convert-1", reason="oops")

    assert ledger_state() == before


def test_credits_returned_to_an_expired_lot_expire_with_it(user):
    now = timezone.now()
    lot = ledger.grant(
        user, 10, source="subscription", reference="in_1", expires_at=now + timedelta(days=1)
    )
    ledger.consume(user, 4, reference="use-1")
    later = now + timedelta(days=2)
    assert ledger.expire(now=later) == 1

    ledger.reverse("use-1", reason="service failed")

    assert _remaining(lot) == (Decimal(4),)
    assert ledger.balance(user, at=later).total == Decimal(0)
    assert ledger.expire(now=later) == 1
    assert_settled(user, at=later)
    assert_invariants(user, at=later)


# --------------------------------------------------------------------------- holds


def test_reversing_a_grant_takes_back_only_what_no_hold_reserves(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=timezone.now() + timedelta(hours=1))

    entry = ledger.reverse("cs_1", reason="refunded")

    assert (entry.amount, entry.shortfall) == (Decimal(-4), Decimal(6))
    lot = CreditLot.objects.get()
    assert (lot.remaining, lot.held) == (Decimal(6), Decimal(6))
    assert ledger.settle("call-1", amount=6) is not None
    assert_invariants(user)
