"""release() frees a hold without charging, once; release_expired_holds() only expired ones."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import ledger
from credits.exceptions import UnknownHold
from credits.models import CreditHold, CreditLot, LedgerEntry
from credits.tests.factories import assert_invariants, ledger_state

pytestmark = pytest.mark.django_db


def _in(hours: float) -> datetime:
    return timezone.now() + timedelta(hours=hours)


def test_release_frees_the_credits_and_charges_nothing(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=_in(1))

    ledger.release("call-1")

    hold = CreditHold.objects.get(key="call-1")
    assert hold.state == "released"
    assert hold.closed_at is not None
    assert CreditLot.objects.get().held == Decimal(0)
    assert ledger.balance(user).available == Decimal(10)
    assert not LedgerEntry.objects.filter(kind="consume").exists()
    assert_invariants(user)


def test_release_twice_releases_once(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=_in(1))
    ledger.hold(user, 3, key="call-2", expires_at=_in(1))
    ledger.release("call-1")
    before = ledger_state()

    ledger.release("call-1")

    assert ledger_state() == before  # call-2's reservation was not freed by the repeat
    assert ledger.balance(user).reserved == Decimal(3)


def test_releasing_a_settled_hold_leaves_the_charge(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 6, key="call-1", expires_at=_in(1))
    ledger.settle("call-1", amount=2)
    before = ledger_state()

    ledger.release("call-1")

    assert ledger_state() == before
    assert CreditHold.objects.get(key="call-1").state == "settled"


def test_releasing_an_unknown_key_is_a_clear_error(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    before = ledger_state()

    with pytest.raises(UnknownHold, match="never-held"):
        ledger.release("never-held")

    assert ledger_state() == before


def test_the_sweep_releases_expired_holds_only(user, other_user):
    for who, reference in ((user, "cs_1"), (other_user, "cs_2")):
        ledger.grant(who, 10, source="purchase", reference=reference)
    ledger.hold(user, 2, key="expired-1", expires_at=_in(1))
    ledger.hold(other_user, 3, key="expired-2", expires_at=_in(2))
    ledger.hold(user, 4, key="live-1", expires_at=_in(5))
    ledger.hold(user, 1, key="settled-1", expires_at=_in(1))
    ledger.settle("settled-1", amount=1)

    assert ledger.release_expired_holds(now=_in(3)) == 2

    states = dict(CreditHold.objects.values_list("key", "state"))
    assert states == {
        "expired-1": "expired",
        "expired-2": "expired",
        "live-1": "open",
        "settled-1": "settled",
    }
    assert ledger.balance(user).reserved == Decimal(4)
    assert ledger.balance(other_user).reserved == Decimal(0)
    assert_invariants(user)
    assert_invariants(other_user)


def test_the_sweep_run_twice_expires_nothing_the_second_time(user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 2, key="call-1", expires_at=_in(1))
    ledger.release_expired_holds(now=_in(2))
    before = ledger_state()

    assert ledger.release_expired_holds(now=_in(2)) == 0
    assert ledger_state() == before


def test_a_hold_past_its_expiry_can_be_settled_until_the_sweep_frees_it(user):
    """Holds close by state, not by clock: the sweep and a settle lock the hold; the first wins."""
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 2, key="call-1", expires_at=_in(1))
    CreditHold.objects.filter(key="call-1").update(expires_at=_in(-1))  # its expiry has passed

    entry = ledger.settle("call-1", amount=2)

    assert entry is not None
    assert ledger.release_expired_holds(now=_in(1)) == 0
    assert CreditHold.objects.get(key="call-1").state == "settled"
