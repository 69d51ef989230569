"""One customer's events apply one at a time, so concurrent ones read what the other committed,
whether the worker applies them from their stored rows (the customer taken from the column
the webhook filled) or the simulator applies them in process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client

from credits.models import CreditLot
from stripe_manager import webhook_queue, webhooks
from stripe_manager.models import StripeCustomer, StripeProduct
from stripe_manager.tests.factories import (
    DAY,
    NOW,
    balance,
    invoice_paid,
    post_signed,
    purchase_completed,
)
from stripe_manager.webhooks import process_event

pytestmark = pytest.mark.django_db(transaction=True)

Event = dict[str, Any]
Apply = Callable[[Event], bool]


@pytest.fixture(params=["worker", "in process"])
def arrive(request: pytest.FixtureRequest, client: Client) -> Callable[[Event], Apply]:
    """``arrive(event)`` readies ``event`` and returns what applies it: for "worker", the
    webhook stores it now and the applier is the worker's; "in process" is the simulator's."""

    def stored(event: Event) -> Apply:
        assert post_signed(client, event) == 200
        return lambda e: webhook_queue.apply_received_event(e["id"]) == "applied"

    if request.param == "worker":
        return stored
    return lambda event: process_event


def _in_thread(target: Any) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_two_plan_invoices_arriving_together_agree_on_the_newest_plan(
    customer: StripeCustomer, catalog: dict[str, StripeProduct], arrive: Callable[[Event], Apply]
) -> None:
    """A Basic renewal still being applied and a Pro upgrade of the same subscription: the
    upgrade must see the renewal's credits and turn them into pay-as-you-go, as it would
    had they come one after the other. Unserialized, it read the history without them and
    the renewal's credits stayed plan credits under the Pro plan."""
    basic, pro = catalog["basic"], catalog["pro"]
    renewal = invoice_paid(customer, basic, invoice_id="in_1", start=NOW)
    upgrade = invoice_paid(customer, pro, invoice_id="in_2", start=NOW + DAY, previous=basic)
    apply_renewal_event, apply_upgrade = arrive(renewal), arrive(upgrade)

    renewal_applied, finish_renewal = threading.Event(), threading.Event()

    def apply_renewal() -> None:
        with transaction.atomic():  # keeps the renewal uncommitted while the upgrade comes
            assert apply_renewal_event(renewal)
            renewal_applied.set()
            finish_renewal.wait(10)

    first = _in_thread(apply_renewal)
    assert renewal_applied.wait(10)
    second = _in_thread(lambda: apply_upgrade(upgrade))
    second.join(1)
    waited = second.is_alive()  # the upgrade waits for the renewal's commit
    finish_renewal.set()
    first.join(10)
    second.join(10)

    assert waited
    live = CreditLot.objects.live().filter(user=customer.user)
    plan_lots = {lot.price_id for lot in live if lot.source == "subscription"}
    assert plan_lots == {pro.stripe_price_id}  # none of Basic's credits left as plan credits
    converted = sum(lot.remaining for lot in live if lot.source == "transfer")
    assert converted == basic.credit_amount  # the renewal's, now pay-as-you-go


def test_events_of_different_customers_do_not_wait_for_each_other(
    customer: StripeCustomer,
    catalog: dict[str, StripeProduct],
    other_customer: StripeCustomer,
    arrive: Callable[[Event], Apply],
) -> None:
    basic = catalog["basic"]
    mine = invoice_paid(customer, basic, invoice_id="in_a")
    theirs = invoice_paid(other_customer, basic, invoice_id="in_b")
    apply_mine, apply_theirs = arrive(mine), arrive(theirs)
    applied, finish = threading.Event(), threading.Event()

    def hold_one_open() -> None:
        with transaction.atomic():
            assert apply_mine(mine)
            applied.set()
            finish.wait(10)

    first = _in_thread(hold_one_open)
    assert applied.wait(10)
    second = _in_thread(lambda: apply_theirs(theirs))
    second.join(5)
    done_meanwhile = not second.is_alive()
    finish.set()
    first.join(10)

    assert done_meanwhile


def _waiting_on_an_advisory_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        row = cursor.fetchone()
    return bool(row and row[0])


def test_the_simulator_and_a_worker_applying_one_event_never_deadlock(
    client: Client, customer: StripeCustomer, catalog: dict[str, StripeProduct]
) -> None:
    """The simulator applies in process an event the worker may take too. Both take the stored
    row first, then the claim, then the customer's lock: while the simulator waits for the
    customer (another of their events being applied), the worker passes the event by. Had
    the simulator claimed before locking the row, the two would deadlock."""
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    locked, release = threading.Event(), threading.Event()

    def another_event_of_the_customer() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            lock: list[int | str] = [webhooks.CUSTOMER_LOCK, customer.stripe_customer_id]
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", lock)
            locked.set()
            release.wait(10)

    outcomes: dict[str, object] = {}
    holder = _in_thread(another_event_of_the_customer)
    assert locked.wait(10)
    simulator = _in_thread(lambda: outcomes.update(simulator=process_event(event)))
    deadline = time.monotonic() + 10
    while not _waiting_on_an_advisory_lock():
        assert time.monotonic() < deadline, "the simulator never reached the customer's lock"
        time.sleep(0.02)
    worker = _in_thread(
        lambda: outcomes.update(worker=webhook_queue.apply_received_event(event["id"]))
    )
    worker.join(10)
    release.set()
    for thread in (holder, simulator):
        thread.join(10)

    assert outcomes == {"worker": "absent", "simulator": True}
    assert balance(customer.user)[2] == 100
