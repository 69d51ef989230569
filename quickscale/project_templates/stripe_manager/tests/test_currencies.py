"""Amounts in currencies whose minor unit is not a cent, end to end (#17).

Stripe writes amounts as integers in the currency's minor unit: 500 in JPY is
¥500, 1000 in USD is $10.00, and three-decimal currencies (KWD ...) count
thousandths, which this project refuses. Each test gives Stripe's integer as
Stripe sends or expects it, written out, never computed by the code under test.

Stripe is either the offline simulator or the real ``StripeGateway`` with only
the SDK's HTTP client faked (``test_gateway``'s ``FakeStripe``, swapped in as
``test_golive`` does), so what the project sends Stripe can be read back.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from common.testing.tasks import run_queued_tasks
from credits import ledger
from stripe_manager import auto_top_up, shapes
from stripe_manager.catalog import catalog_sync
from stripe_manager.exceptions import RefundError
from stripe_manager.gateway import CatalogError
from stripe_manager.models import (
    AutoTopUp,
    AutoTopUpCharge,
    Payment,
    Refund,
    SimulatedObject,
    StripeCustomer,
    StripeProduct,
    UserSubscription,
)
from stripe_manager.refunds import refund_payment
from stripe_manager.simulator import store
from stripe_manager.tests.factories import deliver, invoice_paid, purchase_completed, spend
from stripe_manager.tests.plan_steps import confirmation
from stripe_manager.tests.test_gateway import FakeStripe
from stripe_manager.tests.test_golive import SITE, account, priced, run_failing

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


@pytest.fixture
def stripe_api(settings, monkeypatch) -> FakeStripe:
    """The real gateway, talking to a faked Stripe: what it sends is in ``.sent``."""
    fake = FakeStripe()
    monkeypatch.setattr(
        "stripe._stripe_client.new_default_http_client", lambda *args, **kwargs: fake
    )
    settings.STRIPE_ENABLED = True
    settings.STRIPE_GATEWAY = "stripe"
    settings.STRIPE_LIVE_MODE = False
    settings.STRIPE_SECRET_KEY = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"
    settings.STRIPE_PUBLIC_KEY = "pk_test_" + "TYooMQauvdEDq54NiTphI7jx"
    settings.SITE_URL = SITE
    return fake


@pytest.fixture
def yen_pack() -> StripeProduct:
    return StripeProduct.objects.create(
        name="100 credits",
        price=Decimal(500),
        currency="jpy",
        interval="none",
        credit_amount=Decimal(100),
        stripe_product_id="prod_yen",
        stripe_price_id="price_yen",
    )


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def sent(fake: FakeStripe, method: str, path: str) -> list[dict[str, str]]:
    return [
        request.params for request in fake.sent if (request.method, request.path) == (method, path)
    ]


def buy(client: Client, customer: StripeCustomer, pack: StripeProduct) -> Payment:
    """The pack bought through Stripe Checkout: its ``checkout.session.completed`` delivered."""
    event = purchase_completed(customer, pack)
    assert deliver(client, event) == 200
    return Payment.objects.get(stripe_checkout_session_id=event["data"]["object"]["id"])


# --------------------------------------------------------------------------- catalog


def test_a_yen_price_synced_from_stripe_is_priced_in_whole_yen(stripe_api, signed_in):
    yen = {**priced("price_yen", credit_amount="100"), "currency": "jpy", "unit_amount": 500}
    dollars = priced("price_usd", credit_amount="100")  # unit_amount 1000, in USD
    account(stripe_api, prices=[yen, dollars])

    call_command("sync_stripe_products", stdout=StringIO())

    rows = StripeProduct.objects.order_by("stripe_price_id")
    assert list(rows.values_list("stripe_price_id", "price", "currency")) == [
        ("price_usd", Decimal("10.00"), "usd"),
        ("price_yen", Decimal(500), "jpy"),
    ]
    page = signed_in.get("/pricing/").content.decode()
    assert "¥500" in page
    assert "¥5.00" not in page


def test_a_three_decimal_price_stops_the_sync_and_writes_nothing(stripe_api):
    dinar = {**priced("price_kwd", credit_amount="100"), "currency": "kwd", "unit_amount": 5120}
    account(stripe_api, prices=[priced("price_usd", credit_amount="100"), dinar])

    with pytest.raises(CommandError) as raised:
        call_command("sync_stripe_products", stdout=StringIO())

    assert str(raised.value) == (
        "Stripe price price_kwd (product prod_price_kwd): KWD amounts have three decimals, and "
        "this project keeps amounts with two, so it cannot sell in KWD. Price it in another "
        "currency in Stripe, then sync the catalog again."
    )
    assert not StripeProduct.objects.exists()


def test_the_go_live_check_names_a_three_decimal_price(stripe_api, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_" + "ab" * 32
    dinar = {**priced("price_bhd", credit_amount="100"), "currency": "bhd", "unit_amount": 5120}
    account(stripe_api, prices=[priced("price_usd", credit_amount="100"), dinar])

    output, _ = run_failing()

    assert (
        "FAIL  Stripe price price_bhd (product prod_price_bhd): BHD amounts have three decimals, "
        "and this project keeps amounts with two, so it cannot sell in BHD. "
        "Fix: correct it in Product catalog."
    ) in output.splitlines()
    assert {request.method for request in stripe_api.sent} == {"GET"}


# --------------------------------------------------------------------------- webhooks


def test_a_yen_purchase_records_a_payment_of_500_yen(client, user, customer, yen_pack):
    event = purchase_completed(customer, yen_pack)
    session = event["data"]["object"]
    assert (session["amount_total"], session["currency"]) == (500, "jpy")  # as Stripe sends it

    payment = buy(client, customer, yen_pack)

    assert (payment.amount, payment.currency, payment.credits) == (
        Decimal(500),
        "jpy",
        Decimal(100),
    )
    assert ledger.balance(user).total == Decimal(100)
    client.force_login(user)
    receipt = client.get(f"/billing/receipts/{payment.receipt_number}/").content.decode()
    assert "¥500" in receipt
    assert "¥5.00" not in receipt


def test_a_dollar_purchase_is_recorded_as_before(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert event["data"]["object"]["amount_total"] == 1000

    payment = buy(client, customer, catalog["pack"])

    assert (payment.amount, payment.currency) == (Decimal("10.00"), "usd")


def test_a_yen_plan_invoice_records_its_yen(client, customer):
    plan = StripeProduct.objects.create(
        name="Basic",
        price=Decimal(1500),
        currency="jpy",
        interval="month",
        credit_amount=Decimal(500),
        stripe_product_id="prod_basic_yen",
        stripe_price_id="price_basic_yen",
    )
    event = invoice_paid(customer, plan, invoice_id="in_yen_1")
    invoice = event["data"]["object"]
    assert (invoice["amount_paid"], invoice["currency"]) == (1500, "jpy")

    assert deliver(client, event) == 200

    payment = Payment.objects.get(stripe_invoice_id="in_yen_1")
    assert (payment.amount, payment.currency) == (Decimal(1500), "jpy")


def test_a_yen_refund_made_in_stripe_takes_back_its_share(client, user, customer, yen_pack):
    payment = buy(client, customer, yen_pack)
    refund = shapes.refund(
        "re_yen_1",
        amount=200,  # ¥200 of the ¥500
        charge="ch_yen_1",
        payment_intent=payment.stripe_payment_intent_id,
        customer=customer.stripe_customer_id,
        currency="jpy",
    )

    assert deliver(client, shapes.event("refund.created", refund)) == 200

    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.status) == (
        Decimal(200),
        Payment.Status.PARTIALLY_REFUNDED,
    )
    assert Refund.objects.get().credits_reversed == Decimal(40)
    assert ledger.balance(user).total == Decimal(60)


# --------------------------------------------------------------------------- staff refunds


def test_a_staff_refund_of_part_of_a_yen_payment_asks_stripe_for_that_many_yen(
    client, stripe_api, customer, yen_pack, staff
):
    payment = buy(client, customer, yen_pack)
    stripe_api.answer(
        "POST",
        "/v1/refunds",
        shapes.refund(
            "re_staff_1",
            amount=200,
            charge="ch_1",
            payment_intent=payment.stripe_payment_intent_id,
            currency="jpy",
        ),
    )

    refund = refund_payment(payment_id=payment.pk, amount="200", reason="goodwill", actor=staff)

    [params] = sent(stripe_api, "POST", "/v1/refunds")
    assert (params["amount"], params["payment_intent"]) == ("200", payment.stripe_payment_intent_id)
    assert (refund.amount, refund.status) == (Decimal(200), Refund.Status.SUCCEEDED)
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal(200)


def test_a_staff_refund_of_a_fraction_of_a_yen_is_refused_before_stripe_is_asked(
    client, stripe_api, customer, yen_pack, staff
):
    payment = buy(client, customer, yen_pack)

    with pytest.raises(RefundError) as raised:
        refund_payment(payment_id=payment.pk, amount="12.50", reason="goodwill", actor=staff)

    assert str(raised.value) == (
        "12.50 JPY is not a whole number of its smallest unit (JPY amounts have whole units); "
        "nothing was rounded."
    )
    assert not sent(stripe_api, "POST", "/v1/refunds")
    assert not Refund.objects.exists()
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal(0)


def test_a_staff_refund_of_dollars_asks_stripe_for_cents_as_before(
    client, stripe_api, customer, catalog, staff
):
    payment = buy(client, customer, catalog["pack"])
    stripe_api.answer(
        "POST",
        "/v1/refunds",
        shapes.refund(
            "re_staff_2", amount=250, charge="ch_2", payment_intent=payment.stripe_payment_intent_id
        ),
    )

    refund_payment(payment_id=payment.pk, amount="2.50", reason="goodwill", actor=staff)

    [params] = sent(stripe_api, "POST", "/v1/refunds")
    assert params["amount"] == "250"
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("2.50")


# --------------------------------------------------------------------------- auto top-up


@pytest.fixture
def yen_top_up(user, customer, yen_pack, fund) -> AutoTopUp:
    """Opted in: 120 credits; below 50, buy the ¥500 pack of 100 credits with card pm_1."""
    fund(user, 120)
    return AutoTopUp.objects.create(
        user=user, enabled=True, product=yen_pack, threshold=Decimal(50), payment_method_id="pm_1"
    )


def cross_threshold(user, capture) -> AutoTopUpCharge:
    spend(user, 80, "call-1", capture)  # 120 -> 40: below 50
    return AutoTopUpCharge.objects.get()


def intent_answer(customer: StripeCustomer, *, status: str, key: str = "") -> dict[str, Any]:
    return shapes.payment_intent(
        "pi_top_up_1",
        customer=customer.stripe_customer_id,
        amount=500,
        currency="jpy",
        status=status,
        payment_method="pm_1",
        metadata={auto_top_up.CHARGE_KEY: key},
    )


def test_a_yen_top_up_charges_the_card_500_yen(
    user, customer, yen_top_up, stripe_api, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    charge = cross_threshold(user, capture)
    stripe_api.answer(
        "POST",
        "/v1/payment_intents",
        intent_answer(customer, status="succeeded", key=charge.idempotency_key),
    )

    with capture(execute=True):
        run_queued_tasks()

    [params] = sent(stripe_api, "POST", "/v1/payment_intents")
    assert (params["amount"], params["currency"]) == ("500", "jpy")
    charge.refresh_from_db()
    assert charge.status == AutoTopUpCharge.Status.SUCCEEDED
    payment = Payment.objects.get(stripe_payment_intent_id="pi_top_up_1")
    assert (payment.amount, payment.currency) == (Decimal(500), "jpy")
    assert ledger.balance(user).total == Decimal(140)


@pytest.mark.parametrize("settled_by", ["webhook", "sweep"])
def test_a_processing_yen_top_up_is_recorded_as_500_yen_however_it_settles(
    settled_by, client, user, customer, yen_top_up, stripe_api, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    charge = cross_threshold(user, capture)
    key = charge.idempotency_key
    stripe_api.answer(
        "POST", "/v1/payment_intents", intent_answer(customer, status="processing", key=key)
    )
    with capture(execute=True):
        run_queued_tasks()
    charge.refresh_from_db()
    assert charge.status == AutoTopUpCharge.Status.CHARGED

    paid = intent_answer(customer, status="succeeded", key=key)
    if settled_by == "webhook":
        assert deliver(client, shapes.event("payment_intent.succeeded", paid)) == 200
    else:
        stripe_api.answer("GET", "/v1/payment_intents/pi_top_up_1", paid)
        later = charge.enqueued_at + auto_top_up.CONFIRM_WAIT + timedelta(seconds=1)
        with capture(execute=True):
            assert auto_top_up.sweep_stalled_charges(now=later) == 1

    charge.refresh_from_db()
    assert charge.status == AutoTopUpCharge.Status.SUCCEEDED
    payment = Payment.objects.get(stripe_payment_intent_id="pi_top_up_1")
    assert (payment.amount, payment.currency) == (Decimal(500), "jpy")


# --------------------------------------------------------------------------- simulator


def test_the_simulator_charges_and_refunds_a_yen_pack_in_whole_yen(
    signed_in, user, staff, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    store.save("prod_sim_yen", "product", shapes.product("prod_sim_yen", name="100 credits"))
    store.save(
        "price_sim_yen",
        "price",
        shapes.price(
            "price_sim_yen",
            product_id="prod_sim_yen",
            unit_amount=500,
            currency="jpy",
            metadata={"credit_amount": "100"},
        ),
    )
    catalog_sync()
    assert StripeProduct.objects.get(stripe_price_id="price_sim_yen").price == Decimal(500)

    started = signed_in.post("/billing/checkout/", {"price_id": "price_sim_yen", "quantity": "2"})
    assert started.status_code == 303
    page = signed_in.get(started["Location"]).content.decode()
    assert "¥1,000" in page  # two packs of ¥500
    with capture(execute=True):
        assert signed_in.post(started["Location"], {"action": "pay"}).status_code == 303

    payment = Payment.objects.get(user=user)
    assert (payment.amount, payment.currency) == (Decimal(1000), "jpy")
    [charge] = [row.data for row in SimulatedObject.objects.filter(kind="charge")]
    assert (charge["amount"], charge["currency"]) == (1000, "jpy")

    with capture(execute=True):
        refund_payment(payment_id=payment.pk, amount="300", reason="goodwill", actor=staff)

    [charge] = [row.data for row in SimulatedObject.objects.filter(kind="charge")]
    assert (charge["amount_refunded"], charge["currency"]) == (300, "jpy")
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal(300)


def simulated_yen_price(price_id: str, unit_amount: int, credits: str, interval: str) -> None:
    product_id = f"prod_{price_id}"
    store.save(product_id, "product", shapes.product(product_id, name=price_id.title()))
    store.save(
        price_id,
        "price",
        shapes.price(
            price_id,
            product_id=product_id,
            unit_amount=unit_amount,
            currency="jpy",
            interval=interval,
            metadata={"credit_amount": credits},
        ),
    )


def test_a_yen_upgrade_is_previewed_and_charged_in_whole_yen(
    signed_in, user, monkeypatch, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    simulated_yen_price("price_basic", 1500, "500", "month")
    simulated_yen_price("price_pro", 4500, "2000", "month")
    catalog_sync()
    started = signed_in.post("/billing/checkout/", {"price_id": "price_basic", "quantity": "1"})
    with capture(execute=True):
        signed_in.post(started["Location"], {"action": "pay"})
    subscription = UserSubscription.objects.get()
    assert subscription.current_period_start is not None
    ten_days_in = subscription.current_period_start.timestamp() + 10 * DAY
    # The simulator's clock only (as test_plan_changes moves it), ten days into the period.
    monkeypatch.setattr(
        "stripe_manager.simulator.gateway.time", SimpleNamespace(time=lambda: ten_days_in)
    )

    page = signed_in.get("/billing/plan/change/", {"price_id": "price_pro"}).content.decode()
    # Pro (¥4,500) for 20 of 30 days, less Basic's (¥1,500) unused 20 days: ¥2,000.
    assert "¥2,000" in page
    with capture(execute=True):
        signed_in.post("/billing/plan/change/", {"confirmation": confirmation(page)})

    upgrade = Payment.objects.get(user=user, price_id="price_pro")
    assert (upgrade.amount, upgrade.currency) == (Decimal(2000), "jpy")
    charges = SimulatedObject.objects.filter(kind="charge")
    assert sorted((row.data["amount"], row.data["currency"]) for row in charges) == [
        (1500, "jpy"),
        (2000, "jpy"),
    ]


def test_a_simulated_three_decimal_price_stops_the_sync(db):
    store.save("prod_sim_kwd", "product", shapes.product("prod_sim_kwd", name="Pack"))
    store.save(
        "price_sim_kwd",
        "price",
        shapes.price("price_sim_kwd", product_id="prod_sim_kwd", unit_amount=5120, currency="kwd"),
    )

    with pytest.raises(CatalogError, match="KWD amounts have three decimals"):
        catalog_sync()
    assert not StripeProduct.objects.exists()
