from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from credits import ledger
from credits.exceptions import InsufficientCredits, InvalidAmount, ReferenceConflict
from credits.models import CreditLot, LedgerEntry
from credits.tests.factories import INVALID_AMOUNTS, assert_invariants, ledger_state
from users.models import CustomUser

pytestmark = pytest.mark.django_db


def _subscription(
    user: CustomUser, amount: int, reference: str, *, days: int = 30, price_id: str = "price_basic"
) -> CreditLot:
    return ledger.grant(
        user,
        Decimal(amount),
        source="subscription",
        reference=reference,
        expires_at=timezone.now() + timedelta(days=days),
        price_id=price_id,
    )


def test_consume_takes_subscription_credits_before_pay_as_you_go(user):
    payg = ledger.grant(user, 50, source="purchase", reference="cs_1")
    sub = _subscription(user, 20, "in_1")

    ledger.consume(user, 15, reference="use-1")

    payg.refresh_from_db()
    sub.refresh_from_db()
    assert (sub.remaining, payg.remaining) == (Decimal(5), Decimal(50))


def test_consume_takes_the_soonest_expiring_subscription_lot_first(user):
    later = _subscription(user, 10, "in_later", days=20)
    sooner = _subscription(user, 10, "in_sooner", days=2)

    ledger.consume(user, 4, reference="use-1")

    later.refresh_from_db()
    sooner.refresh_from_db()
    assert (sooner.remaining, later.remaining) == (Decimal(6), Decimal(10))


def test_consume_across_lots_records_what_it_took_from_each(user):
    sub = _subscription(user, 5, "in_1")
    payg = ledger.grant(user, 10, source="purchase", reference="cs_1")

    entry = ledger.consume(user, Decimal("7.25"), reference="use-1", description="Summary")

    rows = {row.lot_id: row.amount for row in entry.lot_rows.all()}
    assert rows == {sub.pk: Decimal(-5), payg.pk: Decimal("-2.25")}
    assert (entry.kind, entry.amount, entry.description) == ("consume", Decimal("-7.25"), "Summary")
    assert ledger.balance(user).total == Decimal("7.75")
    assert_invariants(user)


def test_consume_more_than_the_balance_raises_insufficient_credits_and_changes_nothing(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(InsufficientCredits) as refused:
        ledger.consume(user, Decimal("10.01"), reference="use-1")

    assert (refused.value.required, refused.value.available) == (Decimal("10.01"), Decimal(10))
    assert ledger_state() == before


def test_consume_with_no_credits_at_all_raises_insufficient_credits(user):
    with pytest.raises(InsufficientCredits):
        ledger.consume(user, 1, reference="use-1")

    assert LedgerEntry.objects.count() == 0


def test_consume_does_not_spend_an_expired_lot_even_before_expire_runs(user):
    lot = _subscription(user, 10, "in_1")
    CreditLot.objects.filter(pk=lot.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = ledger_state()

    with pytest.raises(InsufficientCredits):
        ledger.consume(user, 1, reference="use-1")

    assert ledger_state() == before


def test_consume_twice_with_same_reference_charges_once(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    first = ledger.consume(user, 3, reference="use-1")
    before = ledger_state()

    again = ledger.consume(user, 3, reference="use-1")

    assert again.pk == first.pk
    assert ledger_state() == before
    assert ledger.balance(user).total == Decimal(7)


def test_a_repeated_consume_after_the_balance_ran_out_returns_the_first_entry(user):
    ledger.grant(user, 3, source="purchase", reference="cs_1")
    first = ledger.consume(user, 3, reference="use-1")

    assert ledger.consume(user, 3, reference="use-1").pk == first.pk


@pytest.mark.parametrize("amount", INVALID_AMOUNTS.values(), ids=INVALID_AMOUNTS.keys())
def test_consume_refuses_an_invalid_amount_and_changes_nothing(user, amount):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(InvalidAmount):
        ledger.consume(user, amount, reference="use-1")

    assert ledger_state() == before


def test_consume_with_the_reference_of_a_grant_raises_conflict_and_changes_nothing(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(ReferenceConflict):
        ledger.consume(user, 1, reference="cs_1")

    assert ledger_state() == before


def test_consume_with_another_users_reference_raises_conflict(user, other_user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.grant(other_user, 10, source="purchase", reference="cs_2")
    ledger.consume(user, 1, reference="use-1")
    before = ledger_state()

    with pytest.raises(ReferenceConflict):
        ledger.consume(other_user, 1, reference="use-1")

    assert ledger_state() == before


def test_a_repeated_consume_inside_the_callers_transaction_leaves_it_usable(user):
    """The repeat meets the unique key (ON CONFLICT DO NOTHING): no error, nothing written."""
    ledger.grant(user, 10, source="purchase", reference="cs_1")

    with transaction.atomic():
        first = ledger.consume(user, 4, reference="use-1")
        again = ledger.consume(user, 4, reference="use-1")
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    assert again.pk == first.pk
    assert ledger.balance(user).total == Decimal(6)
    assert_invariants(user)


def test_the_returned_entry_matches_the_stored_one(user, staff):
    ledger.grant(user, 10, source="purchase", reference="cs_1")

    entry = ledger.consume(user, Decimal("2.5"), reference="use-1", description="OCR", actor=staff)

    stored = LedgerEntry.objects.get(pk=entry.pk)
    fields = (
        "user_id",
        "kind",
        "amount",
        "shortfall",
        "key",
        "actor_id",
        "description",
        "created_at",
    )
    assert [getattr(entry, f) for f in fields] == [getattr(stored, f) for f in fields]


def test_the_database_function_given_no_amount_writes_nothing(user):
    """consume() never sends NULL; a direct SQL caller gets (NULL, balance), not an error."""
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with connection.cursor() as cursor:
        cursor.execute(
            ledger._CONSUME_SQL,
            [user.pk, None, timezone.now(), "raw-1", "consume", "", "", None, False],
        )
        result = cursor.fetchone()

    assert result == (None, Decimal("10.00"))
    assert ledger_state() == before


# --------------------------------------------------------------------------- holds


def test_consume_never_spends_credits_a_hold_reserves(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 7, key="call-1", expires_at=timezone.now() + timedelta(hours=1))
    before = ledger_state()

    with pytest.raises(InsufficientCredits) as refused:
        ledger.consume(user, 4, reference="use-1")

    assert (refused.value.required, refused.value.available) == (Decimal(4), Decimal(3))
    assert ledger_state() == before
    entry = ledger.consume(user, 3, reference="use-2")
    assert entry.amount == Decimal(-3)
    assert CreditLot.objects.get().held == Decimal(7)
    assert ledger.settle("call-1", amount=7) is not None  # the reservation is all still there
    assert ledger.balance(user).total == Decimal(0)
    assert_invariants(user)


def test_consume_spends_around_a_fully_held_lot_in_spending_order(user):
    _subscription(user, 5, "in_1")
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 5, key="call-1", expires_at=timezone.now() + timedelta(hours=1))

    entry = ledger.consume(user, 4, reference="use-1")

    rows = dict(entry.lot_rows.values_list("lot__reference", "amount"))
    assert rows == {"cs_1": Decimal(-4)}
    assert_invariants(user)
