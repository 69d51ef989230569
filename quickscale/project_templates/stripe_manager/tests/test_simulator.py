"""The offline simulator end to end: buy, subscribe, renew, change plan, refund."""

import secrets
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from stripe_manager import shapes
from stripe_manager.exceptions import RefundError
from stripe_manager.gateway import get_gateway
from stripe_manager.models import Payment, Refund, StripeProduct, UserSubscription
from stripe_manager.refunds import refund_payment
from stripe_manager.simulator import store
from stripe_manager.tests.factories import balance
from stripe_manager.tests.plan_steps import cancel_plan, change_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    call_command("seed_demo_catalog", stdout=None)
    return {p.name: p for p in StripeProduct.objects.all()}


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def pay(client, price_id, capture, quantity=1) -> Any:
    response = client.post("/billing/checkout/", {"price_id": price_id, "quantity": str(quantity)})
    assert response.status_code == 303
    with capture(execute=True):
        paid = client.post(response["Location"], {"action": "pay"})
    assert paid.status_code == 303
    assert "/credits/success/" in paid["Location"]


def test_the_demo_catalog_is_a_credit_pack_and_two_plans_one_also_yearly_seeded_once(demo):
    call_command("seed_demo_catalog", stdout=None)
    assert StripeProduct.objects.count() == 4
    intervals = sorted(p.interval for p in StripeProduct.objects.all())
    assert intervals == ["month", "month", "none", "year"]


def test_the_demo_catalog_is_not_seeded_without_the_simulator(db, settings):
    settings.STRIPE_GATEWAY = "off"
    call_command("seed_demo_catalog", stdout=None)
    assert StripeProduct.objects.count() == 0


def test_production_refuses_the_simulator(settings):
    settings.IS_PRODUCTION = True
    with pytest.raises(ImproperlyConfigured):
        get_gateway()


def test_buy_subscribe_renew_upgrade_downgrade_cancel_and_refund_offline(
    signed_in, user, demo, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    pay(signed_in, "price_sim_credits_100", capture, quantity=2)
    assert balance(user) == (0, 200, 200)

    pay(signed_in, "price_sim_basic_monthly", capture)
    subscription = UserSubscription.objects.get(user=user)
    assert (subscription.status, subscription.price_id) == ("active", "price_sim_basic_monthly")
    assert balance(user) == (500, 200, 700)

    with capture(execute=True):
        assert signed_in.post("/stripe/simulator/renew/").status_code == 303
    assert balance(user)[0] == 1000  # both periods' lots are live until the first one ends

    with capture(execute=True):
        response = change_plan(signed_in, "price_sim_pro_monthly")
    assert response.status_code == 303
    subscription.refresh_from_db()
    assert subscription.price_id == "price_sim_pro_monthly"
    assert balance(user) == (2000, 1200, 3200)  # Basic's credits became pay-as-you-go

    with capture(execute=True):
        change_plan(signed_in, "price_sim_basic_monthly")
    subscription.refresh_from_db()
    assert subscription.scheduled_price_id == "price_sim_basic_monthly"
    with capture(execute=True):
        signed_in.post("/stripe/simulator/renew/")
    subscription.refresh_from_db()
    assert subscription.price_id == "price_sim_basic_monthly"
    assert subscription.scheduled_price_id == ""

    with capture(execute=True):
        cancel_plan(signed_in)
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end
    with capture(execute=True):
        signed_in.post("/billing/plan/resume/")
    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end
    with capture(execute=True):
        cancel_plan(signed_in)
        signed_in.post("/stripe/simulator/renew/")
    subscription.refresh_from_db()
    assert subscription.status == "canceled"

    purchase = Payment.objects.get(kind="credit_purchase")
    before = balance(user)[2]
    with capture(execute=True):
        refund = refund_payment(payment_id=purchase.pk, amount="5.00", reason="test")
    assert refund.status == "succeeded"
    assert balance(user)[2] == before - 50
    with pytest.raises(RefundError):
        refund_payment(payment_id=purchase.pk, amount="15.01")
    with capture(execute=True):
        call_command("refund_payment", purchase.receipt_number, stdout=None)
    purchase.refresh_from_db()
    assert purchase.status == "refunded"
    assert balance(user)[2] == before - 200
    assert Refund.objects.filter(payment=purchase, status="succeeded").count() == 2
    with pytest.raises(RefundError):
        refund_payment(payment_id=purchase.pk)


def test_a_purchase_lands_with_a_random_webhook_secret_as_build_writes_one(
    signed_in, user, demo, settings, django_capture_on_commit_callbacks
):
    # The simulator signs its events with the project's own secret, whatever it is.
    settings.STRIPE_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(32)
    pay(signed_in, "price_sim_credits_100", django_capture_on_commit_callbacks)
    assert balance(user)[2] == 100


def test_the_simulated_checkout_page_belongs_to_its_user(signed_in, client, other_user, demo):
    response = signed_in.post(
        "/billing/checkout/", {"price_id": "price_sim_credits_100", "quantity": "1"}
    )
    url = response["Location"]
    assert signed_in.get(url).status_code == 200
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "pay"}).status_code == 404


def test_cancelling_a_simulated_checkout_grants_nothing(
    signed_in, user, demo, django_capture_on_commit_callbacks
):
    response = signed_in.post(
        "/billing/checkout/", {"price_id": "price_sim_credits_100", "quantity": "1"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = signed_in.post(response["Location"], {"action": "cancel"})
    assert "/credits/cancel/" in cancelled["Location"]
    assert balance(user)[2] == 0


def test_the_portal_button_opens_the_simulated_portal(signed_in, demo):
    response = signed_in.post("/billing/portal/")
    assert response.status_code == 303
    assert signed_in.get(response["Location"]).status_code == 200


def test_the_simulator_reads_catalog_metadata_as_the_stripe_gateway_does(db):
    # A price's own metadata wins when it holds a number; otherwise the product's counts,
    # and a value that is no number is ignored rather than failing the whole catalog.
    metadata = {"credit_amount": "50", "display_order": "4"}
    store.save("prod_odd", "product", shapes.product("prod_odd", name="Odd", metadata=metadata))
    store.save(
        "price_odd",
        "price",
        shapes.price(
            "price_odd",
            product_id="prod_odd",
            unit_amount=500,
            interval="none",
            metadata={"credit_amount": "NaN", "display_order": "first"},
        ),
    )

    [info] = get_gateway().list_prices(product_id="prod_odd")

    assert (info.credit_amount, info.display_order) == (Decimal("50"), 4)


def test_the_simulated_checkout_writes_its_amount_as_money(signed_in, demo):
    """Not "30.0 USD" (the session's cents divided as a float): "$30.00", as every page."""
    pack = StripeProduct.objects.get(stripe_price_id="price_sim_credits_100")
    response = signed_in.post(
        "/billing/checkout/", {"price_id": pack.stripe_price_id, "quantity": "3"}
    )
    html = signed_in.get(response["Location"]).content.decode()
    assert f'<p class="is-size-4">${pack.price * 3:,.2f}</p>' in html
    assert " USD" not in html


@pytest.mark.django_db(transaction=True)  # a worker's connection and the simulator's
def test_the_simulator_waits_for_a_running_worker_that_took_the_event_first(
    client, customer, catalog
):
    """A worker took the stored row and is applying it when the simulator applies it in
    process: the simulator waits for the worker's commit and finds it done (one effect, no
    deadlock), so the page it returns to sees the payment."""
    import json
    import threading
    from datetime import timedelta

    from django.db import connection, transaction

    from stripe_manager import webhooks
    from stripe_manager.simulator import delivery
    from stripe_manager.tests.factories import event_state, post_signed, purchase_completed

    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    applied, finish = threading.Event(), threading.Event()

    def worker() -> None:
        try:
            with transaction.atomic():
                taken = webhooks._claim_due(event["id"], timedelta(minutes=5))
                assert taken is not None
                webhooks._dispatch(json.loads(taken[0].payload))
                applied.set()
                finish.wait(10)
        finally:
            connection.close()

    def simulator() -> None:
        try:
            delivery._apply_in_process(event)
        finally:
            connection.close()

    holder = threading.Thread(target=worker)
    holder.start()
    assert applied.wait(10)
    waiting = threading.Thread(target=simulator)
    waiting.start()
    waiting.join(1)
    waited = waiting.is_alive()
    finish.set()
    holder.join(10)
    waiting.join(10)

    assert waited and not waiting.is_alive()
    assert balance(customer.user)[2] == 100
    assert Payment.objects.count() == 1
    assert event_state(event) == ("processed", 1)
