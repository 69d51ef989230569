"""Refunds end to end through the simulator, with payloads as Stripe sends them.

The simulator's invoices do not list their payments and its charges do not list
their refunds (both includable only): a plan payment's intent comes from
``invoice_payment.paid`` or the gateway's list, a refund from ``refund.created``.
Each refund, however it was made and however often Stripe reports it, takes
back the credits once.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from stripe_manager import shapes
from stripe_manager.gateway import get_gateway
from stripe_manager.models import Payment, Refund, SimulatedObject, StripeProduct
from stripe_manager.refunds import refund_payment
from stripe_manager.simulator.gateway import SimulatorGateway
from stripe_manager.tests.factories import (
    balance,
    deliver,
    invoice_paid,
    invoice_payment_paid,
    purchase_completed,
    refund_event,
)

pytestmark = pytest.mark.django_db

Events = list[dict[str, Any]]

# Lists Stripe leaves out of payloads (includable only), by the object that has them.
INCLUDABLE = {"invoice": "payments", "charge": "refunds", "checkout.session": "line_items"}


@pytest.fixture
def demo(db: Any) -> dict[str, StripeProduct]:
    call_command("seed_demo_catalog", stdout=None)
    return {p.name: p for p in StripeProduct.objects.all()}


@pytest.fixture
def signed_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def sent(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """A context that delivers the simulator's events on exit and collects them."""

    @contextmanager
    def collect() -> Iterator[Events]:
        events: Events = []
        with django_capture_on_commit_callbacks(execute=True):
            yield events
            events += [
                row.data
                for row in SimulatedObject.objects.filter(kind="event").order_by("created_at")
            ]

    return collect


def pay(client: Client, price_id: str, sent: Callable[[], Any]) -> Events:
    response = client.post("/billing/checkout/", {"price_id": price_id, "quantity": "1"})
    assert response.status_code == 303
    events: Events
    with sent() as events:
        assert client.post(response["Location"], {"action": "pay"}).status_code == 303
    return events


def replay(client: Client, events: Events) -> None:
    """Stripe delivers again: the same events, and the same objects as new events."""
    for event in events:
        assert deliver(client, event) == 200
        assert deliver(client, {**event, "id": f"{event['id']}_again"}) == 200


def types(events: Events) -> list[str]:
    return [str(event["type"]) for event in events]


def simulator() -> SimulatorGateway:
    gateway = get_gateway()
    assert isinstance(gateway, SimulatorGateway)
    return gateway


def test_the_simulator_sends_no_field_stripe_leaves_out_of_a_payload(
    signed_in: Client, demo: Any, sent: Any
) -> None:
    events = pay(signed_in, "price_sim_basic_monthly", sent)
    events += pay(signed_in, "price_sim_credits_100", sent)
    purchase = Payment.objects.get(kind="credit_purchase")
    with sent() as refunded:
        simulator().refund_in_dashboard(purchase.stripe_payment_intent_id, 500)

    assert "invoice_payment.paid" in types(events)
    assert types(refunded) == ["charge.refunded", "refund.created"]
    for event in [*events, *refunded]:
        obj = event["data"]["object"]
        assert INCLUDABLE.get(obj["object"], "") not in obj, event["type"]
    charge = refunded[0]["data"]["object"]
    assert charge["amount_refunded"] == 500
    assert refunded[1]["data"]["object"]["customer"] == charge["customer"]


def test_the_test_fixtures_send_no_field_stripe_leaves_out_of_a_payload(
    customer: Any, catalog: dict[str, StripeProduct]
) -> None:
    fixtures = [
        purchase_completed(customer, catalog["pack"]),
        invoice_paid(customer, catalog["basic"], invoice_id="in_x"),
        invoice_payment_paid("in_x", amount=1500),
        refund_event(customer, "pi_x", "re_x", 100),
        shapes.event(
            "charge.refunded",
            shapes.charge("ch_x", customer="cus_x", payment_intent="pi_x", amount=100),
        ),
    ]
    for event in fixtures:
        obj = event["data"]["object"]
        assert INCLUDABLE.get(obj["object"], "") not in obj, event["type"]


def test_a_plan_payment_refunded_by_staff_takes_its_credits_back_once(
    signed_in: Client, user: Any, demo: Any, sent: Any
) -> None:
    bought = pay(signed_in, "price_sim_basic_monthly", sent)
    plan = Payment.objects.get(kind="subscription")
    assert plan.stripe_payment_intent_id.startswith("pi_sim")  # from invoice_payment.paid
    assert balance(user) == (500, 0, 500)

    with sent() as refunded:
        refund = refund_payment(payment_id=plan.pk, reason="staff")

    assert refund.status == "succeeded"
    assert balance(user) == (0, 0, 0)
    replay(signed_in, [*bought, *refunded])
    plan.refresh_from_db()
    assert (plan.status, balance(user)) == ("refunded", (0, 0, 0))
    assert list(Refund.objects.values_list("stripe_refund_id", "credits_reversed")) == [
        (refund.stripe_refund_id, Decimal(500))
    ]


def test_a_staff_refund_finds_a_plan_payments_intent_the_webhook_has_not_brought(
    signed_in: Client, user: Any, demo: Any, sent: Any
) -> None:
    pay(signed_in, "price_sim_basic_monthly", sent)
    # As if invoice_payment.paid were still on its way: the gateway lists the invoice's payments.
    Payment.objects.update(stripe_payment_intent_id="")
    plan = Payment.objects.get(kind="subscription")

    with sent():
        refund = refund_payment(payment_id=plan.pk, amount="5.00")

    plan.refresh_from_db()
    assert (
        plan.stripe_payment_intent_id
        == simulator().invoice_payment_intents(invoice_id=plan.stripe_invoice_id)[0]
    )
    assert (refund.status, plan.status) == ("succeeded", "partially_refunded")
    assert balance(user)[0] == Decimal("333.33")  # a third of the plan's 500 credits back


def test_a_plan_payment_refunded_in_stripes_dashboard_takes_its_credits_back_once(
    signed_in: Client, user: Any, demo: Any, sent: Any
) -> None:
    bought = pay(signed_in, "price_sim_basic_monthly", sent)
    plan = Payment.objects.get(kind="subscription")

    with sent() as refunded:
        refund_id = simulator().refund_in_dashboard(plan.stripe_payment_intent_id, 1500)

    assert balance(user) == (0, 0, 0)
    replay(signed_in, [*bought, *refunded])
    plan.refresh_from_db()
    assert (plan.status, plan.amount_refunded) == ("refunded", Decimal(15))
    assert balance(user) == (0, 0, 0)
    assert list(Refund.objects.values_list("stripe_refund_id", "credits_reversed")) == [
        (refund_id, Decimal(500))
    ]


def test_a_dashboard_refund_of_a_plan_payment_whose_intent_is_not_recorded_yet(
    signed_in: Client, user: Any, demo: Any, sent: Any
) -> None:
    pay(signed_in, "price_sim_basic_monthly", sent)
    plan = Payment.objects.get(kind="subscription")
    intent = plan.stripe_payment_intent_id
    Payment.objects.update(stripe_payment_intent_id="")  # invoice_payment.paid still to come

    with sent():
        simulator().refund_in_dashboard(intent, 1500)

    plan.refresh_from_db()
    assert (plan.stripe_payment_intent_id, plan.status) == (intent, "refunded")
    assert balance(user) == (0, 0, 0)


def test_a_pack_refunded_in_stripes_dashboard_takes_its_credits_back_once(
    signed_in: Client, user: Any, demo: Any, sent: Any
) -> None:
    bought = pay(signed_in, "price_sim_credits_100", sent)
    pack = Payment.objects.get(kind="credit_purchase")

    with sent() as partly:
        simulator().refund_in_dashboard(pack.stripe_payment_intent_id, 250)
    assert balance(user) == (0, 75, 75)
    with sent() as rest:
        simulator().refund_in_dashboard(pack.stripe_payment_intent_id, 750)

    replay(signed_in, [*bought, *partly, *rest])
    pack.refresh_from_db()
    assert (pack.status, balance(user)) == ("refunded", (0, 0, 0))
    assert sorted(Refund.objects.values_list("credits_reversed", flat=True)) == [25, 75]
    # Delivered as JSON exactly as signed: the refund's customer is the payment's.
    refund = json.loads(json.dumps(rest[-1]))["data"]["object"]
    assert refund["customer"] == pack.user.stripe_customer.stripe_customer_id
