"""Random sequences of ledger operations keep the ledger's invariants after every step.

A hypothesis state machine grants, consumes, adjusts down, reverses, converts
subscription credits, holds, settles (below, at and above the hold), releases,
sweeps expired holds, expires and moves a fake clock forward, then checks after
each step that the entry rows of every lot sum to its ``remaining``, that a lot's
``held`` is what open holds reserve on it, that the balance equals the live lots'
``remaining`` with ``available`` never below zero, and, after ``expire()``, that
entries, lots and balance agree.
Each example runs inside a savepoint that is rolled back, so examples never
see each other's rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from credits import ledger
from credits.exceptions import HoldReleased, InsufficientCredits, ReversalExceedsOriginal
from credits.models import CreditHold
from credits.tests.factories import assert_invariants, assert_settled, ledger_state
from users.tests.factories import make_user

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(50), places=2)
# What a held call costs: 0 (a release), sub-cent per-token prices, or whole amounts.
costs = st.one_of(
    st.just(Decimal(0)),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(60), places=4),
)
held = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(20), places=4)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.now: datetime = timezone.now()
        self._clock = mock.patch("django.utils.timezone.now", lambda: self.now)
        self._clock.start()
        self.user = make_user()
        self.staff = make_user(is_staff=True)
        self.references: list[str] = []
        self.holds: list[str] = []
        self.closed: set[str] = set()
        self.counter = 0

    def teardown(self) -> None:
        self._clock.stop()
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _next(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    @rule(amount=amounts, subscription=st.booleans(), days=st.integers(min_value=1, max_value=40))
    def grant(self, amount: Decimal, subscription: bool, days: int) -> None:
        reference = self._next("grant")
        ledger.grant(
            self.user,
            amount,
            source="subscription" if subscription else "purchase",
            reference=reference,
            expires_at=self.now + timedelta(days=days) if subscription else None,
        )
        self.references.append(reference)

    @rule(amount=amounts)
    def consume(self, amount: Decimal) -> None:
        available = ledger.balance(self.user).available
        before = ledger_state()
        reference = self._next("use")
        try:
            ledger.consume(self.user, amount, reference=reference)
        except InsufficientCredits:
            assert available < amount
            assert ledger_state() == before
        else:
            assert available >= amount
            assert ledger.balance(self.user).available == available - amount
            self.references.append(reference)

    @rule(amount=amounts)
    def adjust_down(self, amount: Decimal) -> None:
        """A staff deduction takes what is there and records the rest as the shortfall."""
        available = ledger.balance(self.user).available
        entry = ledger.adjust(
            self.user, -amount, reference=self._next("adj"), reason="test", actor=self.staff
        )
        taken = min(amount, available)
        assert (entry.amount, entry.shortfall) == (-taken, amount - taken)
        assert ledger.balance(self.user).available == available - taken

    @rule(data=st.data(), partial=st.booleans())
    def reverse(self, data: st.DataObject, partial: bool) -> None:
        if not self.references:
            return
        reference = data.draw(st.sampled_from(self.references))
        amount = data.draw(amounts) if partial else None
        before = ledger_state()
        try:
            ledger.reverse(reference, amount=amount, key=self._next("re"), reason="test")
        except ReversalExceedsOriginal:
            assert ledger_state() == before

    @rule(amount=held, hours=st.integers(min_value=1, max_value=24 * 30))
    def hold(self, amount: Decimal, hours: int) -> None:
        before = ledger.balance(self.user)
        state = ledger_state()
        key = self._next("call")
        try:
            hold = ledger.hold(
                self.user, amount, key=key, expires_at=self.now + timedelta(hours=hours)
            )
        except InsufficientCredits:
            assert before.available < ledger.round_up_cost(amount)
            assert ledger_state() == state
        else:
            assert hold.amount == ledger.round_up_cost(amount) <= before.available
            after = ledger.balance(self.user)
            assert (after.total, after.available) == (
                before.total,
                before.available - hold.amount,
            )
            self.holds.append(key)

    @rule(data=st.data(), cost=costs)
    def settle(self, data: st.DataObject, cost: Decimal) -> None:
        """Charge a held call: below, at or above its hold; never below zero."""
        if not self.holds:
            return
        # Mostly open holds: a closed one only checks that a repeat changes nothing.
        open_holds = [key for key in self.holds if key not in self.closed]
        key = data.draw(st.sampled_from(open_holds or self.holds))
        hold = CreditHold.objects.get(key=key)
        before = ledger.balance(self.user)
        state = ledger_state()
        charge = ledger.round_up_cost(cost)
        self.closed.add(key)
        try:
            entry = ledger.settle(key, amount=cost)
        except HoldReleased:
            assert hold.state in ("released", "expired") and charge > 0
            assert ledger_state() == state
            return
        if hold.state != "open":  # a repeat changes nothing
            assert ledger_state() == state
            return
        if charge == 0:
            assert entry is None
            return
        assert entry is not None
        assert entry.shortfall - entry.amount == charge
        assert entry.shortfall == 0 or -entry.amount < charge
        # What the hold reserved on a lot that expired since is charged without
        # counting in the live balance; the rest comes off it.
        assert ledger.balance(self.user).total <= before.total
        self.references.append(key)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if not self.holds:
            return
        key = data.draw(st.sampled_from(self.holds))
        hold = CreditHold.objects.get(key=key)
        before = ledger.balance(self.user)
        self.closed.add(key)
        ledger.release(key)
        after = ledger.balance(self.user)
        assert after.total == before.total
        if hold.state != "open":
            assert after == before

    @rule()
    def sweep_expired_holds(self) -> None:
        ledger.release_expired_holds()
        assert not CreditHold.objects.filter(state="open", expires_at__lte=self.now).exists()

    @rule()
    def convert(self) -> None:
        before = ledger.balance(self.user)
        ledger.convert_subscription_credits(self.user, reference=self._next("convert"))
        after = ledger.balance(self.user)
        assert (after.total, after.reserved) == (before.total, before.reserved)

    @rule(days=st.integers(min_value=1, max_value=20))
    def advance_time(self, days: int) -> None:
        self.now += timedelta(days=days)

    @rule()
    def expire(self) -> None:
        ledger.expire()
        assert_settled(self.user)

    @rule(data=st.data())
    def repeat_a_reference(self, data: st.DataObject) -> None:
        """A retried call with a reference already used changes nothing."""
        if not self.references:
            return
        reference = data.draw(st.sampled_from(self.references))
        before = ledger_state()
        if reference.startswith("grant"):
            ledger.grant(self.user, Decimal(1), source="purchase", reference=reference)
        else:
            ledger.consume(self.user, Decimal(1), reference=reference)
        assert ledger_state() == before

    @invariant()
    def invariants_hold(self) -> None:
        assert_invariants(self.user, at=self.now)
        balance = ledger.balance(self.user)
        assert balance.total >= balance.reserved >= 0
        assert balance.available >= 0


@pytest.mark.django_db
def test_ledger_invariants_hold_over_random_sequences_of_operations():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
