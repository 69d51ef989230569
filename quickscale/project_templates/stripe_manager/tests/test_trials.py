"""Free trials: the catalog's trial metadata, checkout, credits, and the simulator end to end."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from credits import ledger
from credits.models import CreditLot
from stripe_manager import shapes
from stripe_manager.catalog import catalog_sync
from stripe_manager.gateway import CatalogError
from stripe_manager.models import Payment, SimulatedObject, StripeProduct, UserSubscription
from stripe_manager.simulator import delivery, store
from stripe_manager.tests.factories import (
    balance,
    deliver,
    invoice_paid,
    make_customer,
    price_obj,
)
from stripe_manager.tests.plan_steps import cancel_plan, change_plan
from stripe_manager.tests.test_story import deliver_like_stripe
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

BASIC = "price_sim_basic_monthly"
DAY = 24 * 3600


def set_metadata(product_id: str, **metadata: str) -> None:
    """Change a simulated Stripe product's metadata, as staff do in Stripe's dashboard."""
    row = SimulatedObject.objects.get(object_id=product_id, kind="product")
    row.data["metadata"].update(metadata)
    row.save()


@pytest.fixture
def demo(db):
    call_command("seed_demo_catalog", stdout=None)


@pytest.fixture
def trial_plan(demo):
    """The demo's Basic plan (500 credits, 15.00 a month) with a 14-day trial of 50 credits."""
    set_metadata("prod_sim_basic", trial_days="14", trial_credits="50")
    catalog_sync()
    return StripeProduct.objects.get(stripe_price_id=BASIC)


@pytest.fixture
def sent(monkeypatch) -> list[dict[str, Any]]:
    """Every event the simulator delivers, in order (to deliver them all again)."""
    events: list[dict[str, Any]] = []
    original = delivery.deliver_now

    def record(batch: list[dict[str, Any]]) -> list[int]:
        events.extend(batch)
        return original(batch)

    monkeypatch.setattr(delivery, "deliver_now", record)
    return events


def subscribe(client, capture) -> None:
    response = client.post("/billing/checkout/", {"price_id": BASIC, "quantity": "1"})
    assert response.status_code == 303
    with capture(execute=True):
        paid = client.post(response["Location"], {"action": "pay"})
    assert paid.status_code == 303


def replay(events: list[dict[str, Any]], capture) -> None:
    """Deliver every event again, as Stripe may: each is a duplicate now."""
    with capture(execute=True):
        assert set(delivery.deliver_now(list(events))) == {200}


def charges() -> int:
    return SimulatedObject.objects.filter(kind="charge").count()


def state(user) -> tuple[Any, ...]:
    lots = sorted(
        (lot.source, lot.amount, lot.remaining) for lot in CreditLot.objects.filter(user=user)
    )
    payments = sorted(Payment.objects.filter(user=user).values_list("amount", "credits"))
    return balance(user), lots, payments


# --------------------------------------------------------------------------- catalog


def test_the_catalog_sync_reads_a_plans_trial_days_and_credits(trial_plan):
    assert (trial_plan.trial_days, trial_plan.trial_credit_amount) == (14, Decimal("50"))
    assert trial_plan.offers_trial
    pro = StripeProduct.objects.get(stripe_price_id="price_sim_pro_monthly")
    assert (pro.trial_days, pro.trial_credit_amount, pro.offers_trial) == (None, Decimal(0), False)


def test_a_trial_without_credits_is_allowed(demo):
    set_metadata("prod_sim_basic", trial_days="7", trial_credits="0")
    catalog_sync()
    plan = StripeProduct.objects.get(stripe_price_id=BASIC)
    assert (plan.trial_days, plan.trial_credit_amount) == (7, Decimal(0))


@pytest.mark.parametrize("days", ["0", "-3", "1.5", "14.0", "two weeks", "7 days", "731", "NaN"])
def test_a_trial_length_that_is_not_a_positive_whole_number_of_days_stops_the_sync(
    trial_plan, days
):
    set_metadata("prod_sim_basic", trial_days=days, credit_amount="999")
    before = list(StripeProduct.objects.values())

    with pytest.raises(CatalogError) as raised:
        catalog_sync()

    message = str(raised.value)
    assert "prod_sim_basic" in message
    assert "trial_days must be a whole number of days from 1 to 730" in message
    assert repr(days) in message
    assert list(StripeProduct.objects.values()) == before  # nothing changed


@pytest.mark.parametrize("credits", ["-1", "lots", "Infinity", "0.001"])
def test_trial_credits_that_are_not_a_number_of_credits_stop_the_sync(trial_plan, credits):
    set_metadata("prod_sim_basic", trial_credits=credits)
    before = list(StripeProduct.objects.values())

    with pytest.raises(CatalogError, match="trial_credits must be a number of credits"):
        catalog_sync()

    assert list(StripeProduct.objects.values()) == before


def test_the_sync_command_names_the_bad_trial_length_and_exits_non_zero(trial_plan):
    set_metadata("prod_sim_basic", trial_days="0")

    with pytest.raises(CommandError, match="trial_days must be a whole number of days"):
        call_command("sync_stripe_products", stdout=None)


def test_the_pricing_page_shows_the_trial_and_offers_to_start_it(client, user, trial_plan):
    client.force_login(user)
    html = client.get("/pricing/").content.decode()
    assert "14-day free trial</strong> with 50 credits" in html
    assert "Start free trial" in html
    assert client.get("/").content.decode().count("14-day free trial") == 1  # landing page


# --------------------------------------------------------------------------- end to end


def test_a_trial_grants_its_credits_then_the_first_payment_grants_the_plans(
    client, user, trial_plan, sent, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    client.force_login(user)

    subscribe(client, capture)

    subscription = UserSubscription.objects.get(user=user)
    assert subscription.status == "trialing"
    assert subscription.trial_end is not None
    days = (subscription.trial_end - timezone.now()).total_seconds() / DAY
    assert 13.99 < days <= 14
    assert subscription.current_period_end == subscription.trial_end
    assert charges() == 0  # nothing charged for the trial
    assert not Payment.objects.exists()  # the $0 invoice is no payment and grants nothing
    assert balance(user) == (50, 0, 50)
    [trial_lot] = CreditLot.objects.filter(user=user)
    assert (trial_lot.source, trial_lot.expires_at) == ("trial", subscription.trial_end)
    page = client.get("/billing/").content.decode()
    assert f"Free trial until {subscription.trial_end:%Y-%m-%d}; then $15.00 per month" in page
    assert "Simulate trial end" in page

    started = state(user)
    replay(sent, capture)
    assert state(user) == started

    # The trial's end: Stripe bills the first period, the subscription turns active.
    with capture(execute=True):
        assert client.post("/stripe/simulator/renew/").status_code == 303

    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert subscription.current_period_start == subscription.trial_end
    assert charges() == 1
    [payment] = Payment.objects.filter(user=user)
    assert (payment.amount, payment.credits) == (Decimal("15.00"), Decimal("500.00"))
    assert payment.period_start == subscription.trial_end
    assert payment.stripe_payment_intent_id  # a refund of it would work
    assert balance(user) == (500, 0, 500)  # the trial's credits ended with it

    ended = state(user)
    replay(sent, capture)
    assert state(user) == ended


def test_trial_credits_spent_during_the_trial_stay_spent(
    client, user, trial_plan, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    client.force_login(user)
    subscribe(client, capture)
    ledger.consume(user, 30, reference="call-1")

    with capture(execute=True):
        client.post("/stripe/simulator/renew/")

    assert balance(user) == (500, 0, 500)


def test_a_trial_cancelled_before_its_end_charges_nothing_and_grants_nothing_more(
    client, user, trial_plan, sent, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    client.force_login(user)
    subscribe(client, capture)
    with capture(execute=True):
        assert cancel_plan(client).status_code == 303
    page = client.get("/billing/").content.decode()
    assert "the plan ends then and nothing is charged" in page

    with capture(execute=True):
        client.post("/stripe/simulator/renew/")  # the trial's end

    subscription = UserSubscription.objects.get(user=user)
    assert subscription.status == "canceled"
    assert charges() == 0
    assert not Payment.objects.exists()
    assert balance(user) == (0, 0, 0)
    ended = state(user)
    replay(sent, capture)
    assert state(user) == ended


def test_an_account_gets_one_trial_a_second_plan_is_paid_at_once(
    client, user, trial_plan, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    client.force_login(user)
    subscribe(client, capture)
    with capture(execute=True):
        cancel_plan(client)
        client.post("/stripe/simulator/renew/")
    html = client.get("/pricing/").content.decode()
    assert "(first plan only)" in html
    assert "Start free trial" not in html

    subscribe(client, capture)

    second = UserSubscription.objects.get(user=user, status="active")
    assert second.trial_end is None
    assert charges() == 1
    assert balance(user) == (500, 0, 500)


def test_a_plan_without_a_trial_is_charged_at_once(
    client, user, demo, django_capture_on_commit_callbacks
):
    client.force_login(user)
    subscribe(client, django_capture_on_commit_callbacks)
    subscription = UserSubscription.objects.get(user=user)
    assert (subscription.status, subscription.trial_end) == ("active", None)
    assert charges() == 1


# --------------------------------------------------------------------------- Stripe's events


def test_the_simulators_trial_events_carry_what_stripe_sends(
    client, user, trial_plan, sent, django_capture_on_commit_callbacks
):
    client.force_login(user)
    subscribe(client, django_capture_on_commit_callbacks)

    by_type = {event["type"]: event["data"]["object"] for event in sent}
    created = by_type["customer.subscription.created"]
    assert created["status"] == "trialing"
    assert created["trial_end"] - created["trial_start"] == 14 * DAY
    item = created["items"]["data"][0]
    assert (item["current_period_start"], item["current_period_end"]) == (
        created["trial_start"],
        created["trial_end"],
    )
    invoice = by_type["invoice.paid"]
    assert (invoice["billing_reason"], invoice["amount_paid"]) == ("subscription_create", 0)
    assert "payments" not in invoice  # includable only
    assert "invoice_payment.paid" not in by_type  # nothing was paid
    session = by_type["checkout.session.completed"]
    assert (session["payment_status"], session["amount_total"]) == ("no_payment_required", 0)
    assert set(created) == set(
        shapes.subscription(
            "sub_x",
            customer="cus_x",
            price_obj=store.price(BASIC),
            item_id="si_x",
            period_start=0,
            period_end=1,
        )
    )


def test_a_trial_started_for_a_customer_of_ours_grants_once_whatever_the_replays(
    client, catalog, customer
):
    plan = catalog["basic"]
    plan.trial_days, plan.trial_credit_amount = 7, Decimal("25")
    plan.save()
    now = int(timezone.now().timestamp())
    trialing = shapes.subscription(
        "sub_t",
        customer=customer.stripe_customer_id,
        price_obj=price_obj(plan),
        item_id="si_t",
        status="trialing",
        period_start=now,
        period_end=now + 7 * DAY,
        trial_start=now,
        trial_end=now + 7 * DAY,
    )
    created = shapes.event("customer.subscription.created", trialing, created=now)
    updated = shapes.event("customer.subscription.updated", trialing, created=now + 1)

    for event in (created, created, updated):
        assert deliver(client, event) == 200

    assert balance(customer.user) == (25, 0, 25)
    assert CreditLot.objects.filter(user=customer.user).count() == 1


def test_a_zero_invoice_of_a_paid_price_is_no_trial_and_grants_the_plan(client, catalog, customer):
    """A 100% coupon: the line keeps its price, only amount_paid is 0; the plan's credits come."""
    event = invoice_paid(customer, catalog["basic"], invoice_id="in_coupon")
    event["data"]["object"]["amount_paid"] = 0

    assert deliver(client, event) == 200

    assert balance(customer.user) == (500, 0, 500)


def test_another_user_is_offered_the_trial(client, trial_plan, django_capture_on_commit_callbacks):
    first, second = make_user(), make_user()
    for account in (first, second):
        client.force_login(account)
        subscribe(client, django_capture_on_commit_callbacks)
    assert list(UserSubscription.objects.values_list("status", flat=True)) == [
        "trialing",
        "trialing",
    ]


def test_an_upgrade_during_the_trial_stays_free_and_the_trials_end_bills_the_new_plan(
    client, user, trial_plan, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    client.force_login(user)
    subscribe(client, capture)

    with capture(execute=True):
        response = change_plan(client, "price_sim_pro_monthly")
    assert response.status_code == 303

    subscription = UserSubscription.objects.get(user=user)
    assert (subscription.status, subscription.price_id) == ("trialing", "price_sim_pro_monthly")
    assert charges() == 0
    assert not Payment.objects.exists()
    assert balance(user) == (50, 0, 50)  # the trial's credits, granted once

    with capture(execute=True):
        client.post("/stripe/simulator/renew/")

    [payment] = Payment.objects.filter(user=user)
    assert (payment.amount, payment.credits) == (Decimal("45.00"), Decimal("2000.00"))
    assert balance(user) == (2000, 0, 2000)


def trial_story(customer, plan, suffix: str) -> list[dict[str, Any]]:
    """A 7-day trial and its end, as Stripe sends them, with ids of their own (``suffix``)."""
    start = int(timezone.now().timestamp())
    end = start + 7 * DAY
    sub_id, price = f"sub_trial_{suffix}", price_obj(plan)

    def sub(status: str, period: tuple[int, int]) -> dict[str, Any]:
        return shapes.subscription(
            sub_id,
            customer=customer.stripe_customer_id,
            price_obj=price,
            item_id=f"si_{suffix}",
            status=status,
            period_start=period[0],
            period_end=period[1],
            created=start,
            trial_start=start,
            trial_end=end,
        )

    def paid(invoice_id: str, amount: int, period: tuple[int, int], reason: str) -> Any:
        line = shapes.invoice_line(
            price_obj=price, amount=amount, period_start=period[0], period_end=period[1]
        )
        invoice = shapes.invoice(
            invoice_id,
            customer=customer.stripe_customer_id,
            subscription_id=sub_id,
            lines=[line],
            billing_reason=reason,
            created=period[0],
        )
        return shapes.event("invoice.paid", invoice, created=period[0])

    first = (end, end + 30 * DAY)
    return [
        shapes.event("customer.subscription.created", sub("trialing", (start, end)), created=start),
        paid(f"in_trial_{suffix}", 0, (start, end), "subscription_create"),
        shapes.event("customer.subscription.updated", sub("active", first), created=start + 60),
        paid(f"in_first_{suffix}", 1500, first, "subscription_cycle"),
    ]


@pytest.mark.parametrize("seed", range(6))
def test_a_trial_delivered_in_any_order_ends_as_in_order(client, catalog, customer, seed):
    plan = catalog["basic"]
    plan.trial_days, plan.trial_credit_amount = 7, Decimal("50")
    plan.save()
    for event in trial_story(customer, plan, "a"):
        assert deliver(client, event) == 200
    expected = balance(customer.user)
    assert expected == (500, 0, 500)  # the plan's credits; the trial's ended with it

    other = make_customer(make_user(), "cus_shuffled_trial")
    events = trial_story(other, plan, "b")
    rng = random.Random(seed)
    rng.shuffle(events)
    deliver_like_stripe(client, events, rng)

    assert balance(other.user) == expected
    assert UserSubscription.objects.get(user=other.user).status == "active"
    assert list(Payment.objects.filter(user=other.user).values_list("amount", "credits")) == [
        (Decimal("15.00"), Decimal("500.00"))
    ]
