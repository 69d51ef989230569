"""One customer's events apply one at a time, so concurrent ones read what the other committed."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction

from credits.models import CreditLot
from stripe_manager.models import StripeCustomer, StripeProduct
from stripe_manager.tests.factories import DAY, NOW, invoice_paid
from stripe_manager.webhooks import process_event

pytestmark = pytest.mark.django_db(transaction=True)


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
    customer: StripeCustomer, catalog: dict[str, StripeProduct]
) -> None:
    """A Basic renewal still being applied and a Pro upgrade of the same subscription: the
    upgrade must see the renewal's credits and turn them into pay-as-you-go, as it would
    had they come one after the other. Unserialized, it read the history without them and
    the renewal's credits stayed plan credits under the Pro plan."""
    basic, pro = catalog["basic"], catalog["pro"]
    renewal = invoice_paid(customer, basic, invoice_id="in_1", start=NOW)
    upgrade = invoice_paid(customer, pro, invoice_id="in_2", start=NOW + DAY, previous=basic)

    renewal_applied, finish_renewal = threading.Event(), threading.Event()

    def apply_renewal() -> None:
        with transaction.atomic():  # keeps the renewal uncommitted while the upgrade comes
            assert process_event(renewal)
            renewal_applied.set()
            finish_renewal.wait(10)

    first = _in_thread(apply_renewal)
    assert renewal_applied.wait(10)
    second = _in_thread(lambda: process_event(upgrade))
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
    customer: StripeCustomer, catalog: dict[str, StripeProduct], other_customer: StripeCustomer
) -> None:
    basic = catalog["basic"]
    applied, finish = threading.Event(), threading.Event()

    def hold_one_open() -> None:
        with transaction.atomic():
            assert process_event(invoice_paid(customer, basic, invoice_id="in_a"))
            applied.set()
            finish.wait(10)

    first = _in_thread(hold_one_open)
    assert applied.wait(10)
    second = _in_thread(
        lambda: process_event(invoice_paid(other_customer, basic, invoice_id="in_b"))
    )
    second.join(5)
    done_meanwhile = not second.is_alive()
    finish.set()
    first.join(10)

    assert done_meanwhile
