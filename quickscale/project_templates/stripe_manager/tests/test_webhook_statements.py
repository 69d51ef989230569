"""What a paid event costs the database: the request that stores it and the worker's processing
of it, each counted (``bench/webhooks.py`` measures the rates), and the paths that skip lookups
still find what another event recorded first."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from common.testing.tasks import queued_task_names
from credits.models import CreditLot, LedgerEntry
from stripe_manager import shapes, webhook_queue
from stripe_manager.models import Payment, StripeCustomer, StripeProduct
from stripe_manager.tests.factories import (
    DAY,
    NOW,
    balance,
    deliver,
    invoice_paid,
    post_signed,
    purchase_completed,
)

pytestmark = pytest.mark.django_db

# The request: one statement (autocommit) stores the event; a second arms one stored before
# again if it waits or was given up (nothing, for one applied).
REQUEST = 1
DUPLICATE_REQUEST = 2
# The worker's processing, in one transaction: BEGIN, the event taken from its row and
# claimed (one statement), the lookup of the customer and product (and plan history), the
# payment, the grant, the receipt's outbox row (the worker's email thread sends it), COMMIT.
# Inside a test's transaction BEGIN and COMMIT are a savepoint and its release.
PROCESSING = 7
# Finding nothing due is the same transaction with the one statement in it.
NOTHING_DUE = 3


def _request(client: Client, event: dict[str, Any]) -> list[str]:
    """The statements of the POST alone (nothing applied yet)."""
    with CaptureQueriesContext(connection) as queries:
        status = post_signed(client, event)
    assert status == 200
    return [query["sql"] for query in queries.captured_queries]


def _processing(event: dict[str, Any], outcome: str = "applied") -> list[str]:
    """The statements of the function the worker's task runs, for ``event``."""
    with CaptureQueriesContext(connection) as queries:
        assert webhook_queue.apply_received_event(event["id"]) == outcome
    return [query["sql"] for query in queries.captured_queries]


def _statements(client: Client, event: dict[str, Any]) -> list[str]:
    """A delivery's statements: the request's, then the processing's."""
    return _request(client, event) + _processing(event)


def test_a_credit_purchase_is_stored_in_one_statement_and_applied_in_seven(
    client: Client, customer: StripeCustomer, catalog: dict[str, StripeProduct]
) -> None:
    event = purchase_completed(customer, catalog["pack"], quantity=2)

    assert len(_request(client, event)) == REQUEST
    assert queued_task_names() == []  # the stored row is the work item
    assert balance(customer.user) == (0, 0, 0)  # stored, not applied yet
    assert len(_processing(event)) == PROCESSING
    assert balance(customer.user) == (0, 200, 200)
    # The same delivery again: found stored, nothing to apply.
    assert len(_request(client, event)) == DUPLICATE_REQUEST
    assert len(_processing(event, "absent")) == NOTHING_DUE
    assert balance(customer.user) == (0, 200, 200)


def test_a_plan_renewal_is_stored_in_one_statement_and_applied_in_seven(
    client: Client, customer: StripeCustomer, catalog: dict[str, StripeProduct]
) -> None:
    basic = catalog["basic"]
    first = invoice_paid(customer, basic, invoice_id="in_1", reason="subscription_create")
    assert deliver(client, first) == 200
    renewal = invoice_paid(customer, basic, invoice_id="in_2", start=NOW + 30 * DAY)

    assert len(_request(client, renewal)) == REQUEST
    assert len(_processing(renewal)) == PROCESSING
    assert set(Payment.objects.values_list("stripe_invoice_id", flat=True)) == {"in_1", "in_2"}
    assert LedgerEntry.objects.filter(kind="grant").count() == 2


def test_a_renewal_after_a_plan_change_still_converts_the_old_plans_credits(
    client: Client, customer: StripeCustomer, catalog: dict[str, StripeProduct]
) -> None:
    basic, pro = catalog["basic"], catalog["pro"]
    assert deliver(client, invoice_paid(customer, basic, invoice_id="in_b")) == 200
    changed = invoice_paid(customer, pro, invoice_id="in_p", start=NOW + DAY, previous=basic)

    assert deliver(client, changed) == 200

    live = CreditLot.objects.filter(user=customer.user, remaining__gt=0)
    assert {(lot.source, lot.price_id) for lot in live} == {
        ("subscription", pro.stripe_price_id),
        ("transfer", ""),  # basic's credits, now pay-as-you-go
    }


def test_a_payment_another_event_recorded_first_is_found_on_the_second_attempt(
    client: Client, customer: StripeCustomer, catalog: dict[str, StripeProduct]
) -> None:
    """The first attempt inserts without looking, breaks the unique session id, and rolls back
    whole; the second finds the pending payment and completes it, granting once."""
    pack = catalog["pack"]
    pending = purchase_completed(customer, pack, session_id="cs_async")
    pending["data"]["object"]["payment_status"] = "unpaid"
    assert deliver(client, pending) == 200
    assert Payment.objects.get().status == Payment.Status.PENDING

    paid = shapes.event(
        "checkout.session.async_payment_succeeded",
        dict(pending["data"]["object"], payment_status="paid"),
    )
    statements = _statements(client, paid)

    payment = Payment.objects.get()
    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.credit_reference == "cs_async"
    assert balance(customer.user) == (0, 100, 100)
    assert sum(sql.startswith("ROLLBACK TO SAVEPOINT") for sql in statements) == 1


def test_a_new_subscription_converts_another_plans_live_credits_without_the_history_lookup(
    client: Client, customer: StripeCustomer, catalog: dict[str, StripeProduct]
) -> None:
    """No paid period recorded for the new subscription: the short path, which converts
    only because the lookup saw live credits of another plan."""
    basic, pro = catalog["basic"], catalog["pro"]
    assert deliver(client, invoice_paid(customer, basic, invoice_id="in_b", sub_id="sub_1")) == 200

    new_plan = invoice_paid(customer, pro, invoice_id="in_p", sub_id="sub_2", start=NOW + DAY)
    statements = _statements(client, new_plan)

    live = CreditLot.objects.filter(user=customer.user, remaining__gt=0)
    assert {(lot.source, lot.price_id) for lot in live} == {
        ("subscription", pro.stripe_price_id),
        ("transfer", ""),
    }
    processing = statements[REQUEST:]
    # After the transaction's start, the claim and the context lookup: no history lookup.
    assert not any("ORDER BY" in sql and "stripe_manager_payment" in sql for sql in processing[3:])
