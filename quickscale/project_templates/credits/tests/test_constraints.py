"""Each database constraint, proven by writes that bypass the ledger (QuerySet.update)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError
from django.utils import timezone

from credits import ledger
from credits.models import CreditHold, CreditLot, LedgerEntry, LedgerEntryLot
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def lot(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.consume(user, 4, reference="use-1")
    return CreditLot.objects.get(reference="cs_1")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"amount": Decimal(0)}, id="amount zero"),
        pytest.param({"amount": Decimal(-1), "remaining": Decimal(0)}, id="amount negative"),
        pytest.param({"remaining": Decimal("-0.01")}, id="remaining negative"),
        pytest.param({"remaining": F("amount") + 1}, id="remaining above amount"),
    ],
)
def test_the_database_refuses_a_lot_outside_its_bounds(lot, change):
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditLot.objects.filter(pk=lot.pk).update(**change)

    lot.refresh_from_db()
    assert (lot.amount, lot.remaining) == (Decimal(10), Decimal(6))


def test_the_database_refuses_a_second_lot_with_the_same_reference(user, lot):
    other = ledger.grant(user, 1, source="purchase", reference="cs_2")

    with pytest.raises(IntegrityError), transaction.atomic():
        CreditLot.objects.filter(pk=other.pk).update(reference="cs_1")


def test_the_database_refuses_a_second_entry_with_the_same_key(lot):
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.filter(key="use-1").update(key="cs_1")


def test_the_database_refuses_a_negative_shortfall(lot):
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.filter(key="use-1").update(shortfall=Decimal(-1))


def test_the_database_refuses_an_entry_row_of_zero(lot):
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntryLot.objects.filter(entry__key="use-1").update(amount=Decimal(0))


def test_the_database_refuses_two_rows_for_one_entry_and_lot(lot):
    consume_row = LedgerEntryLot.objects.get(entry__key="use-1")

    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntryLot.objects.filter(pk=consume_row.pk).update(
            entry=LedgerEntry.objects.get(key="cs_1")
        )


def test_deleting_an_account_with_credit_history_is_refused(user, lot):
    with pytest.raises(ProtectedError), transaction.atomic():
        user.delete()

    assert LedgerEntry.objects.filter(user=user).count() == 2


def test_a_deactivated_account_keeps_its_whole_history(user, lot):
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert LedgerEntry.objects.filter(user=user).count() == 2
    assert CreditLot.objects.filter(user=user).count() == 1


def test_deleting_a_staff_member_who_acted_on_credits_is_refused(user, lot):
    staff = make_user(is_staff=True)
    ledger.adjust(user, 1, reference="adj-1", reason="goodwill", actor=staff)

    with pytest.raises(ProtectedError), transaction.atomic():
        staff.delete()


# --------------------------------------------------------------------------- holds


@pytest.fixture
def hold(user, lot):
    return ledger.hold(user, 2, key="call-1", expires_at=timezone.now() + timedelta(hours=1))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"held": Decimal("-0.01")}, id="held negative"),
        pytest.param({"held": F("remaining") + Decimal("0.01")}, id="held above remaining"),
        pytest.param({"remaining": Decimal("1.99")}, id="remaining below held"),
    ],
)
def test_the_database_refuses_a_lot_holding_more_than_it_has(lot, hold, change):
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditLot.objects.filter(pk=lot.pk).update(**change)

    lot.refresh_from_db()
    assert (lot.remaining, lot.held) == (Decimal(6), Decimal(2))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"amount": Decimal(0)}, id="amount zero"),
        pytest.param({"key": "call-2"}, id="key of another hold"),
        pytest.param({"state": "released"}, id="closed without closed_at"),
        pytest.param({"closed_at": timezone.now()}, id="open with closed_at"),
        pytest.param({"lot_amounts": [Decimal(1), Decimal(1)]}, id="amounts not one per lot"),
    ],
)
def test_the_database_refuses_a_hold_outside_its_bounds(user, hold, change):
    ledger.hold(user, 1, key="call-2", expires_at=hold.expires_at)

    with pytest.raises(IntegrityError), transaction.atomic():
        CreditHold.objects.filter(pk=hold.pk).update(**change)


def test_deleting_an_account_with_a_hold_is_refused(user, hold):
    with pytest.raises(ProtectedError), transaction.atomic():
        user.delete()
