from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import ledger
from credits.exceptions import InvalidAmount, MissingReason, ReferenceConflict
from credits.models import CreditLot
from credits.tests.factories import assert_invariants, ledger_state

pytestmark = pytest.mark.django_db


def test_a_positive_adjustment_grants_a_pay_as_you_go_lot_recorded_as_an_adjustment(user, staff):
    entry = ledger.adjust(user, Decimal("12.50"), reference="adj-1", reason="goodwill", actor=staff)

    lot = CreditLot.objects.get(user=user)
    assert (lot.source, lot.expires_at, lot.remaining) == ("adjustment", None, Decimal("12.50"))
    assert (entry.kind, entry.amount, entry.reason, entry.actor) == (
        "adjustment",
        Decimal("12.50"),
        "goodwill",
        staff,
    )
    assert ledger.balance(user).pay_as_you_go == Decimal("12.50")
    assert_invariants(user)


def test_a_negative_adjustment_takes_from_live_lots_in_spending_order(user, staff):
    ledger.grant(user, 10, source="purchase", reference="cs_1")

    entry = ledger.adjust(
        user, Decimal(-4), reference="adj-1", reason="duplicate grant", actor=staff
    )

    assert (entry.kind, entry.amount, entry.shortfall) == ("adjustment", Decimal(-4), Decimal(0))
    assert ledger.balance(user).total == Decimal(6)
    assert_invariants(user)


def test_a_negative_adjustment_never_goes_below_zero_and_records_the_shortfall(user, staff):
    ledger.grant(user, 3, source="purchase", reference="cs_1")

    entry = ledger.adjust(user, Decimal(-5), reference="adj-1", reason="clawback", actor=staff)

    assert (entry.amount, entry.shortfall) == (Decimal(-3), Decimal(2))
    assert ledger.balance(user).total == Decimal(0)
    assert_invariants(user)


def test_an_adjustment_repeated_with_the_same_reference_applies_once(user, staff):
    first = ledger.adjust(user, 5, reference="adj-1", reason="goodwill", actor=staff)
    before = ledger_state()

    assert ledger.adjust(user, 5, reference="adj-1", reason="goodwill", actor=staff).pk == first.pk
    assert ledger_state() == before


def test_an_adjustment_of_zero_is_refused_and_changes_nothing(user, staff):
    before = ledger_state()

    with pytest.raises(InvalidAmount):
        ledger.adjust(user, 0, reference="adj-1", reason="nothing", actor=staff)

    assert ledger_state() == before


def test_an_adjustment_needs_a_reason(user, staff):
    before = ledger_state()

    with pytest.raises(MissingReason):
        ledger.adjust(user, 5, reference="adj-1", reason="", actor=staff)

    assert ledger_state() == before


def test_a_positive_adjustment_can_be_reversed_like_a_grant(user, staff):
    ledger.adjust(user, 5, reference="adj-1", reason="goodwill", actor=staff)

    ledger.reverse("adj-1", reason="granted by mistake", actor=staff)

    assert ledger.balance(user).total == Decimal(0)
    assert_invariants(user)


def test_a_negative_adjustment_with_a_reference_already_used_raises_conflict_and_changes_nothing(
    user, staff
):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 2, reference="use-1")
    before = ledger_state()

    with pytest.raises(ReferenceConflict):
        ledger.adjust(user, Decimal(-4), reference="use-1", reason="clawback", actor=staff)

    assert ledger_state() == before


def test_a_negative_adjustment_repeated_with_the_same_reference_takes_once(user, staff):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    first = ledger.adjust(user, Decimal(-4), reference="adj-1", reason="clawback", actor=staff)
    before = ledger_state()

    again = ledger.adjust(user, Decimal(-4), reference="adj-1", reason="clawback", actor=staff)

    assert again.pk == first.pk
    assert ledger_state() == before
    assert ledger.balance(user).total == Decimal(6)


# --------------------------------------------------------------------------- holds


def test_a_deduction_never_takes_credits_a_hold_reserves(user, staff):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=timezone.now() + timedelta(hours=1))

    entry = ledger.adjust(user, -9, reference="adj-1", reason="chargeback", actor=staff)

    assert (entry.amount, entry.shortfall) == (Decimal(-4), Decimal(5))
    lot = CreditLot.objects.get()
    assert (lot.remaining, lot.held) == (Decimal(6), Decimal(6))
    assert ledger.settle("call-1", amount=6) is not None
    assert ledger.balance(user).total == Decimal(0)
    assert_invariants(user)
