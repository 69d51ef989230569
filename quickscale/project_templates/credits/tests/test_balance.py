from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from credits import ledger
from credits.models import CreditLot

pytestmark = pytest.mark.django_db


def test_a_new_user_has_a_zero_balance(user):
    balance = ledger.balance(user)

    assert balance == ledger.Balance(Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    assert str(balance.total) == "0.00"  # as the navbar shows it


def test_balance_splits_subscription_and_pay_as_you_go_credits(user):
    ledger.grant(
        user,
        30,
        source="subscription",
        reference="in_1",
        expires_at=timezone.now() + timedelta(days=3),
    )
    ledger.grant(user, Decimal("7.5"), source="purchase", reference="cs_1")
    ledger.grant(user, 2, source="signup", reference="signup-1")

    assert ledger.balance(user) == ledger.Balance(
        Decimal(30), Decimal("9.5"), Decimal("39.5"), Decimal(0), Decimal("39.5")
    )


def test_balance_counts_only_lots_live_at_the_moment_asked(user):
    now = timezone.now()
    ledger.grant(
        user, 10, source="subscription", reference="in_1", expires_at=now + timedelta(days=1)
    )
    ledger.grant(user, 4, source="purchase", reference="cs_1")

    assert ledger.balance(user, at=now).total == Decimal(14)
    assert ledger.balance(user, at=now + timedelta(days=1)).total == Decimal(4)


def test_balance_does_not_count_other_users_credits(user, other_user):
    ledger.grant(other_user, 10, source="purchase", reference="cs_1")

    assert ledger.balance(user).total == Decimal(0)


def test_balance_agrees_with_the_live_lots_queryset_at_every_moment(user, other_user):
    """balance() is written in SQL; CreditLotQuerySet.live() is the definition it follows."""
    now = timezone.now()
    for days, amount in ((1, 10), (3, 20)):
        ledger.grant(
            user,
            amount,
            source="subscription",
            reference=f"in_{days}",
            expires_at=now + timedelta(days=days),
        )
    ledger.grant(user, 5, source="purchase", reference="cs_1")
    ledger.grant(user, 7, source="signup", reference="signup-1")
    ledger.grant(other_user, 100, source="purchase", reference="cs_other")
    ledger.consume(user, 12, reference="use-1")  # empties the first lot, dips into the second

    for days in (0, 1, 2, 3, 4):
        moment = now + timedelta(days=days)
        lots = CreditLot.objects.filter(user=user).live(moment)
        expected_total = sum((lot.remaining for lot in lots), Decimal(0))
        expected_subscription = sum(
            (lot.remaining for lot in lots if lot.source == CreditLot.Source.SUBSCRIPTION),
            Decimal(0),
        )

        balance = ledger.balance(user, at=moment)

        assert (balance.total, balance.subscription) == (expected_total, expected_subscription)
        assert balance.pay_as_you_go == expected_total - expected_subscription


def test_balance_is_served_by_the_open_lots_index(user):
    """The plan must read the partial index on open lots, whatever the history length."""
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    # A long history of spent lots, as an old account has, and fresh statistics: the
    # planner then prefers the partial index for what it is (on a near-empty table any
    # index costs the same, and the choice between them depends on leftover statistics).
    CreditLot.objects.bulk_create(
        CreditLot(
            user=user,
            source=CreditLot.Source.PURCHASE,
            priority=CreditLot.Priority.PAY_AS_YOU_GO,
            amount=Decimal(1),
            remaining=Decimal(0),
            reference=f"spent_{n}",
        )
        for n in range(3000)
    )
    params = [*ledger._PLAN_SOURCES, user.pk, timezone.now()]
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {CreditLot._meta.db_table}")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {ledger._BALANCE_SQL}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "credits_lot_open_with_held" in plan
