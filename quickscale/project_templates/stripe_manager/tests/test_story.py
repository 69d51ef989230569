"""purchase -> subscribe -> renew -> upgrade -> refunds of the pack and the plan, in any order."""

import random
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from stripe_manager import webhook_queue
from stripe_manager.models import Payment, ReceivedStripeEvent, Refund, UserSubscription
from stripe_manager.simulator import store
from stripe_manager.tests.factories import (
    DAY,
    NOW,
    balance,
    deliver,
    invoice_paid,
    invoice_payment_paid,
    purchase_completed,
    refund_event,
    subscription_event,
)

pytestmark = pytest.mark.django_db

P1 = NOW - 35 * DAY  # the first period is over
P2 = NOW - 5 * DAY  # the current period


def story(customer, catalog) -> Any:
    basic, pro, pack = catalog["basic"], catalog["pro"], catalog["pack"]
    return [
        purchase_completed(customer, pack, quantity=2, session_id="cs_story"),
        subscription_event(
            "customer.subscription.created", customer, basic, start=P1, created=P1, event_id="e1"
        ),
        invoice_paid(customer, basic, invoice_id="in_1", start=P1, created=P1),
        subscription_event(
            "customer.subscription.updated", customer, basic, start=P2, created=P2, event_id="e2"
        ),
        invoice_paid(customer, basic, invoice_id="in_2", start=P2, created=P2),
        subscription_event(
            "customer.subscription.updated", customer, pro, start=P2, created=NOW, event_id="e3"
        ),
        invoice_paid(
            customer,
            pro,
            invoice_id="in_3",
            start=P2,
            created=NOW,
            previous=basic,
            reason="subscription_update",
        ),
        refund_event(customer, "pi_cs_story", "re_1", 500),
        refund_event(customer, "pi_cs_story", "re_2", 1500),
        # The plan invoices' payment intents come in their own events, and a
        # refund made in Stripe's dashboard of part of the Pro upgrade.
        invoice_payment_paid("in_1", amount=1500),
        invoice_payment_paid("in_2", amount=1500),
        invoice_payment_paid("in_3", amount=4000),
        refund_event(customer, "pi_in_3", "re_plan", 1000),
    ]


def final_state(user) -> Any:
    return (
        balance(user),
        sorted(Payment.objects.values_list("stripe_invoice_id", "status", "amount_refunded")),
        sorted(Refund.objects.values_list("stripe_refund_id", "credits_reversed")),
        list(UserSubscription.objects.values_list("status", "price_id")),
    )


def deliver_like_stripe(client, events, rng) -> Any:
    """Deliver in the given order; the worker retries every event that could not apply yet.

    Every delivery is answered 200 (stored); an attempt that needs an event not applied
    yet schedules its own retry, and rounds of retries run until none is left, each
    round's retries in an order ``rng`` shuffles (the worker takes the earliest due first).
    """
    for event in events:
        assert deliver(client, event) == 200
    for _ in range(50):
        if not ReceivedStripeEvent.objects.filter(state="pending").exists():
            assert not ReceivedStripeEvent.objects.exclude(state="processed").exists()
            return
        assert retries_due_shuffled(rng) > 0  # a pending event always has its retry queued
    pending = ReceivedStripeEvent.objects.filter(state="pending").values_list("event_type")
    raise AssertionError(f"never settled: {list(pending)}")


def retries_due_shuffled(rng: random.Random) -> int:
    """Make every pending event due, in an order ``rng`` picks, and try each once."""
    pending = list(ReceivedStripeEvent.objects.filter(state="pending").values_list("pk", flat=True))
    rng.shuffle(pending)
    now = timezone.now()
    for position, pk in enumerate(pending):
        earlier = timedelta(seconds=len(pending) - position)
        ReceivedStripeEvent.objects.filter(pk=pk).update(next_attempt_at=now - earlier)
    return sum(webhook_queue.apply_next_due_event() for _ in pending)


def test_the_story_in_order_gives_the_expected_state(client, customer, catalog):
    for event in story(customer, catalog):
        assert deliver(client, event) == 200
    subscription, pay_as_you_go, total = balance(customer.user)
    # Pro's 2000 for the current period less the refunded quarter of its payment;
    # Basic's current 500 converted; the pack refunded.
    assert (subscription, pay_as_you_go, total) == (1500, 500, 2000)
    assert UserSubscription.objects.get().price_id == "price_pro"


@pytest.mark.parametrize("seed", range(8))
def test_the_story_shuffled_with_retries_ends_in_the_in_order_state(
    client, customer, catalog, seed, django_db_blocker
):
    for event in story(customer, catalog):
        deliver(client, event)
    expected = final_state(customer.user)

    from stripe_manager.tests.factories import make_customer
    from users.tests.factories import make_user

    other = make_customer(make_user(), "cus_shuffled")
    events = story(other, catalog)
    # Same story for a second customer, with its own ids.
    for event in events:
        event["id"] = f"{event['id']}_b"
        obj = event["data"]["object"]
        for key in ("id", "payment_intent"):
            if isinstance(obj.get(key), str):
                obj[key] = f"{obj[key]}_b"
        if isinstance(obj.get("invoice"), str):
            obj["invoice"] = f"{obj['invoice']}_b"
        if obj.get("object") == "invoice_payment":
            payment = obj["payment"]
            payment["payment_intent"] = f"{payment['payment_intent']}_b"
            # Stripe can always list an invoice's payments (the gateway's fallback
            # when invoice_payment.paid came before its invoice was recorded).
            store.save(obj["id"], "invoice_payment", obj)
        details = (obj.get("parent") or {}).get("subscription_details")
        if details:
            details["subscription"] = f"{details['subscription']}_b"
    rng = random.Random(seed)
    rng.shuffle(events)
    deliver_like_stripe(client, events, rng)
    assert balance(other.user) == expected[0]
    mine = Payment.objects.filter(user=other.user)
    assert sorted(mine.values_list("status", "amount_refunded")) == sorted(
        Payment.objects.filter(user=customer.user).values_list("status", "amount_refunded")
    )
    assert (
        list(UserSubscription.objects.filter(user=other.user).values_list("status", "price_id"))
        == expected[3]
    )
