"""Every debit takes credits in one order: consume and a negative adjust agree, lot by lot.

On random sets of lots (subscription and pay-as-you-go, live and expired, some
expiring at the same moment) each example spends the same amount once by
``consume`` and once by ``adjust`` (each in a rolled-back savepoint) and
compares what each lot gave with the documented order: priority, then the
soonest expiry, then the oldest lot; never an expired lot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credits import ledger
from credits.exceptions import InsufficientCredits
from credits.models import CreditLot
from credits.tests.factories import assert_invariants
from users.models import CustomUser
from users.tests.factories import make_user

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(40), places=2)
# (subscription?, expiry in days from now: None never expires, <= 0 already expired, amount)
lot_specs = st.lists(
    st.tuples(st.booleans(), st.one_of(st.none(), st.integers(-2, 3)), amounts), max_size=6
)


@contextmanager
def _rolled_back() -> Iterator[None]:
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _make_lots(user: CustomUser, specs: list[tuple[bool, int | None, Decimal]]) -> list[CreditLot]:
    now = timezone.now()
    lots = []
    for number, (subscription, days, amount) in enumerate(specs):
        # Whole days from one instant, so lots of equal ``days`` expire together.
        expires_at = None if days is None else now + timedelta(days=days)
        lots.append(
            ledger.grant(
                user,
                amount,
                source="subscription" if subscription else "purchase",
                reference=f"lot-{number}",
                expires_at=expires_at,
            )
        )
    return lots


def _expected_takes(lots: list[CreditLot], amount: Decimal, now: datetime) -> dict[int, Decimal]:
    """What the documented spending order takes from each lot (at most the live balance)."""
    live = [lot for lot in lots if lot.expires_at is None or lot.expires_at > now]
    live.sort(key=lambda lot: (lot.priority, lot.expires_at is None, lot.expires_at or now, lot.pk))
    takes, left = {}, amount
    for lot in live:
        part = min(lot.remaining, left)
        if part > 0:
            takes[lot.pk] = part
            left -= part
    return takes


def _takes(lots: list[CreditLot]) -> dict[int, Decimal]:
    stored = CreditLot.objects.filter(pk__in=[lot.pk for lot in lots])
    after = dict(stored.values_list("pk", "remaining"))
    return {lot.pk: lot.remaining - after[lot.pk] for lot in lots if after[lot.pk] != lot.remaining}


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(specs=lot_specs, amount=amounts)
def test_consume_and_a_negative_adjust_take_the_same_credits_from_the_same_lots(
    specs: list[tuple[bool, int | None, Decimal]], amount: Decimal
):
    with _rolled_back():
        user, staff = make_user(), make_user(is_staff=True)
        lots = _make_lots(user, specs)
        available = ledger.balance(user).total
        expected = _expected_takes(lots, amount, timezone.now())

        with _rolled_back():
            try:
                ledger.consume(user, amount, reference="use-1")
            except InsufficientCredits:
                consumed = None
            else:
                consumed = _takes(lots)
                assert_invariants(user)

        with _rolled_back():
            entry = ledger.adjust(user, -amount, reference="adj-1", reason="test", actor=staff)
            adjusted = _takes(lots)
            assert_invariants(user)

    assert adjusted == expected
    assert (entry.amount, entry.shortfall) == (-min(amount, available), max(amount - available, 0))
    if amount <= available:
        assert consumed == expected
    else:
        assert consumed is None
