"""Migration 0009 against the real schema: zero-decimal amounts stored divided by 100 are put right.

Rows are written with the models as they were at 0008 (the historical models
the migration itself uses), then the migration is run forward or back.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)  # migrations run outside a test transaction

BEFORE = ("stripe_manager", "0008_received_event_customer")
AFTER = ("stripe_manager", "0009_zero_decimal_amounts")
TABLES = ("autotopupcharge", "refund", "payment", "stripeproduct")


def _migrate(target: tuple[str, str]) -> Any:
    """Migrate to ``target``; the historical models as they are there."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


@pytest.fixture
def at_0008() -> Iterator[Any]:
    try:
        yield _migrate(BEFORE)
    finally:
        # A row a test left that 0009 refuses would stop the way back to the latest schema.
        with connection.cursor() as cursor:
            for table in TABLES:
                cursor.execute(f"DELETE FROM stripe_manager_{table}")
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def _sale(apps: Any, user: Any, currency: str, amount: str, refunded: str) -> dict[str, Any]:
    """A pack in ``currency``, a payment of ``amount`` with a refund, an auto top-up charge."""
    product = apps.get_model("stripe_manager", "StripeProduct").objects.create(
        name=f"Pack {currency}",
        price=Decimal(amount),
        currency=currency,
        credit_amount=Decimal(100),
        stripe_product_id=f"prod_{currency}",
        stripe_price_id=f"price_{currency}",
    )
    payment = apps.get_model("stripe_manager", "Payment").objects.create(
        user_id=user.pk,
        product=product,
        kind="credit_purchase",
        status="partially_refunded",
        amount=Decimal(amount),
        amount_refunded=Decimal(refunded),
        currency=currency,
    )
    refund = apps.get_model("stripe_manager", "Refund").objects.create(
        payment=payment,
        amount=Decimal(refunded),
        status="succeeded",
        idempotency_key=f"refund-{currency}",
    )
    charges = apps.get_model("stripe_manager", "AutoTopUpCharge").objects
    charge = charges.create(
        user_id=user.pk,
        sequence=charges.count() + 1,
        product=product,
        amount=Decimal(amount),
        currency=currency,
        credits=Decimal(100),
        status="succeeded",
        idempotency_key=f"top-up-{currency}",
    )
    return {"product": product.pk, "payment": payment.pk, "refund": refund.pk, "charge": charge.pk}


def _amounts(apps: Any, rows: dict[str, Any]) -> tuple[Decimal, ...]:
    """(price, payment amount, amount refunded, refund amount, auto top-up charge amount)."""

    def model(name: str) -> Any:
        return apps.get_model("stripe_manager", name).objects

    payment = model("Payment").get(pk=rows["payment"])
    return (
        model("StripeProduct").get(pk=rows["product"]).price,
        payment.amount,
        payment.amount_refunded,
        model("Refund").get(pk=rows["refund"]).amount,
        model("AutoTopUpCharge").get(pk=rows["charge"]).amount,
    )


def _money(*values: int) -> tuple[Decimal, ...]:
    return tuple(Decimal(value) for value in values)


def test_zero_decimal_amounts_are_multiplied_by_100_and_others_left(
    at_0008: Any, user: Any
) -> None:
    # ¥500 paid, ¥200 refunded, as the code before #17 stored them.
    yen = _sale(at_0008, user, "jpy", "5.00", "2.00")
    # Upper case as stored by hand or an older sync: still won (KRW is zero-decimal).
    won = _sale(at_0008, user, "KRW", "123.45", "0.01")
    dollars = _sale(at_0008, user, "usd", "5.00", "2.00")

    after = _migrate(AFTER)

    assert _amounts(after, yen) == _money(500, 500, 200, 200, 500)
    assert _amounts(after, won) == _money(12345, 12345, 1, 1, 12345)
    assert _amounts(after, dollars) == _money(5, 5, 2, 2, 5)


def test_going_back_divides_zero_decimal_amounts_by_100(at_0008: Any, user: Any) -> None:
    yen_before = _sale(at_0008, user, "jpy", "5.00", "2.00")
    dollars = _sale(at_0008, user, "usd", "5.00", "2.00")
    after = _migrate(AFTER)
    # Written by the code after #17: ¥1,200 paid, ¥300 refunded.
    yen_after = _sale(after, user, "xof", "1200", "300")

    before = _migrate(BEFORE)

    assert _amounts(before, yen_before) == _money(5, 5, 2, 2, 5)
    assert _amounts(before, yen_after) == _money(12, 12, 3, 3, 12)
    assert _amounts(before, dollars) == _money(5, 5, 2, 2, 5)


def test_an_amount_too_large_to_multiply_stops_0009_before_anything_changes(
    at_0008: Any, user: Any
) -> None:
    yen = _sale(at_0008, user, "jpy", "5.00", "2.00")
    # 10**8 yen-as-stored would be 10**10 once multiplied: more than numeric(12, 2) holds.
    huge = _sale(at_0008, user, "vnd", "100000000.00", "1.00")
    dollars = _sale(at_0008, user, "usd", "100000000.00", "1.00")

    with pytest.raises(RuntimeError, match=r"StripeProduct rows \[\d+\] hold amounts of 100000000"):
        _migrate(AFTER)

    assert _amounts(at_0008, yen) == _money(5, 5, 2, 2, 5)
    assert _amounts(at_0008, huge)[0] == Decimal("100000000.00")
    assert _amounts(at_0008, dollars)[0] == Decimal("100000000.00")
    applied = MigrationExecutor(connection).loader.applied_migrations
    assert AFTER not in applied


def test_a_zero_decimal_amount_with_a_fraction_stops_going_back(at_0008: Any, user: Any) -> None:
    after = _migrate(AFTER)
    whole = _sale(after, user, "jpy", "500", "200")
    # Only a hand edit makes ¥12.50; dividing it by 100 would round 0.125.
    fraction = _sale(after, user, "clp", "12.50", "1")

    with pytest.raises(RuntimeError, match=r"StripeProduct rows \[\d+\] hold amounts with a"):
        _migrate(BEFORE)

    assert _amounts(after, whole) == _money(500, 500, 200, 200, 500)
    assert _amounts(after, fraction)[0] == Decimal("12.50")
