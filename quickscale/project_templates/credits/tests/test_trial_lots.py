"""Trial credits (source ``trial``): plan credits that end with the trial, never converted."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import ledger
from credits.models import CreditLot

pytestmark = pytest.mark.django_db


def test_trial_credits_count_as_the_plans_part_of_the_balance_and_are_spent_first(user):
    trial_end = timezone.now() + timedelta(days=14)
    ledger.grant(user, 100, source="purchase", reference="cs_1")
    ledger.grant(user, 50, source="trial", reference="trial:sub_1", expires_at=trial_end)

    assert ledger.balance(user).subscription == Decimal("50")
    ledger.consume(user, 30, reference="call-1")

    lots = {lot.source: lot.remaining for lot in CreditLot.objects.filter(user=user)}
    assert lots == {"trial": Decimal("20"), "purchase": Decimal("100")}


def test_a_plan_change_never_turns_trial_credits_into_pay_as_you_go(user):
    trial_end = timezone.now() + timedelta(days=14)
    ledger.grant(user, 50, source="trial", reference="trial:sub_1", expires_at=trial_end)

    assert ledger.convert_subscription_credits(user, reference="convert:in_1") is None

    balance = ledger.balance(user)
    assert (balance.subscription, balance.pay_as_you_go) == (Decimal("50"), Decimal("0"))
    assert ledger.balance(user, at=trial_end).total == 0  # they end with the trial
