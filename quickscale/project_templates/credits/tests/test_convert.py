from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import ledger
from credits.models import CreditLot, LedgerEntry
from credits.tests.factories import assert_invariants, ledger_state
from users.models import CustomUser

pytestmark = pytest.mark.django_db


def _plan_lot(
    user: CustomUser, amount: int, reference: str, price_id: str, *, days: int = 30
) -> CreditLot:
    return ledger.grant(
        user,
        Decimal(amount),
        source="subscription",
        reference=reference,
        expires_at=timezone.now() + timedelta(days=days),
        price_id=price_id,
    )


def test_live_subscription_lots_become_one_pay_as_you_go_lot(user):
    first = _plan_lot(user, 30, "in_1", "price_basic")
    second = _plan_lot(user, 20, "in_2", "price_basic", days=10)
    ledger.consume(user, 5, reference="use-1")

    entry = ledger.convert_subscription_credits(user, reference="convert-in_3")
    assert entry is not None

    converted = CreditLot.objects.get(reference="convert-in_3")
    assert (converted.source, converted.expires_at, converted.amount) == (
        "transfer",
        None,
        Decimal(45),
    )
    assert [CreditLot.objects.get(pk=lot.pk).remaining for lot in (first, second)] == [0, 0]
    assert (entry.kind, entry.amount) == ("transfer", Decimal(0))
    balance = ledger.balance(user)
    assert (balance.subscription, balance.pay_as_you_go) == (Decimal(0), Decimal(45))
    assert_invariants(user)


def test_conversion_after_the_new_plans_grant_leaves_the_new_prices_lots_alone(user):
    _plan_lot(user, 30, "in_old", "price_basic")
    new = _plan_lot(user, 100, "in_new", "price_pro")

    ledger.convert_subscription_credits(
        user, reference="convert-in_new", except_price_id="price_pro"
    )

    assert CreditLot.objects.get(pk=new.pk).remaining == Decimal(100)
    balance = ledger.balance(user)
    assert (balance.subscription, balance.pay_as_you_go) == (Decimal(100), Decimal(30))


def test_conversion_before_the_new_plans_grant_leaves_the_new_prices_lots_alone(user):
    _plan_lot(user, 30, "in_old", "price_basic")

    ledger.convert_subscription_credits(
        user, reference="convert-in_new", except_price_id="price_pro"
    )
    new = _plan_lot(user, 100, "in_new", "price_pro")

    assert CreditLot.objects.get(pk=new.pk).remaining == Decimal(100)
    balance = ledger.balance(user)
    assert (balance.subscription, balance.pay_as_you_go) == (Decimal(100), Decimal(30))


def test_conversion_leaves_pay_as_you_go_and_expired_lots_alone(user):
    payg = ledger.grant(user, 10, source="purchase", reference="cs_1")
    old = _plan_lot(user, 30, "in_old", "price_basic")
    CreditLot.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    before = ledger_state()

    assert ledger.convert_subscription_credits(user, reference="convert-1") is None

    assert ledger_state() == before
    assert CreditLot.objects.get(pk=payg.pk).remaining == Decimal(10)


def test_conversion_repeated_with_the_same_reference_converts_once(user):
    _plan_lot(user, 30, "in_old", "price_basic")
    first = ledger.convert_subscription_credits(user, reference="convert-1")
    _plan_lot(user, 50, "in_later", "price_basic")
    before = ledger_state()

    again = ledger.convert_subscription_credits(user, reference="convert-1")

    assert again is not None and first is not None and again.pk == first.pk
    assert ledger_state() == before


# --------------------------------------------------------------------------- holds


def test_conversion_moves_held_credits_with_their_reservations(user):
    old = _plan_lot(user, 30, "in_1", "price_basic")
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    ledger.hold(user, 12, key="call-1", expires_at=timezone.now() + timedelta(hours=1))

    ledger.convert_subscription_credits(user, reference="convert-in_2")

    converted = CreditLot.objects.get(reference="convert-in_2")
    old.refresh_from_db()
    assert (old.remaining, old.held, old.converted_into) == (Decimal(0), Decimal(0), converted)
    assert (converted.remaining, converted.held) == (Decimal(30), Decimal(12))
    balance = ledger.balance(user)
    assert (balance.total, balance.reserved, balance.available) == (
        Decimal(35),
        Decimal(12),
        Decimal(23),
    )
    assert_invariants(user)


def test_a_hold_settled_after_a_conversion_charges_the_new_lot(user):
    """Credits freed by the hold stay in the new lot: nothing is left to expire in the old one."""
    _plan_lot(user, 30, "in_1", "price_basic")
    ledger.hold(user, 12, key="call-1", expires_at=timezone.now() + timedelta(hours=1))
    ledger.convert_subscription_credits(user, reference="convert-in_2")

    entry = ledger.settle("call-1", amount=5)

    assert entry is not None
    rows = dict(entry.lot_rows.values_list("lot__reference", "amount"))
    assert rows == {"convert-in_2": Decimal(-5)}
    converted = CreditLot.objects.get(reference="convert-in_2")
    assert (converted.remaining, converted.held) == (Decimal(25), Decimal(0))
    assert ledger.balance(user).available == Decimal(25)
    assert_invariants(user)


@pytest.mark.parametrize("amount", [0, 12, 20], ids=["release", "in full", "with an excess"])
def test_a_hold_on_two_converted_lots_closes_on_the_new_lot(user: CustomUser, amount: int):
    _plan_lot(user, 4, "in_1", "price_basic", days=5)
    _plan_lot(user, 30, "in_2", "price_basic")
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    ledger.hold(user, 12, key="call-1", expires_at=timezone.now() + timedelta(hours=1))
    ledger.convert_subscription_credits(user, reference="convert-in_3")

    ledger.settle("call-1", amount=amount)

    assert CreditLot.objects.filter(held__gt=0).count() == 0
    balance = ledger.balance(user)
    assert (balance.total, balance.reserved) == (Decimal(39 - amount), Decimal(0))
    if amount:
        assert LedgerEntry.objects.get(key="call-1").shortfall == Decimal(0)
    assert_invariants(user)
