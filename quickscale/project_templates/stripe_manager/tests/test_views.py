"""Pages: every payment action is a POST answered 303; bad input; nothing granted by pages."""

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from common.testing.html import texts
from credits.models import CreditLot
from stripe_manager.models import Payment, SimulatedObject, StripeCustomer, UserSubscription
from stripe_manager.tests.factories import (
    balance,
    deliver,
    make_customer,
    purchase_completed,
    subscription_event,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def sessions() -> Any:
    return SimulatedObject.objects.filter(kind="checkout_session")


def test_buying_credits_redirects_303_to_checkout_and_grants_nothing(signed_in, user, catalog):
    response = signed_in.post("/billing/checkout/", {"price_id": "price_pack", "quantity": "3"})
    assert response.status_code == 303
    assert response["Location"].startswith("/stripe/simulator/checkout/cs_sim_")
    session = sessions().get()
    assert session.data["quantity"] == 3
    assert session.data["metadata"]["credits"] == "300.00"
    assert balance(user)[2] == 0


@pytest.mark.parametrize("quantity", ["-1", "0", "abc", "1.5", "", "11", "100001"])
def test_bad_quantities_are_refused_without_a_checkout(signed_in, user, catalog, quantity):
    # 11 packs of 100 credits is above MAX_CREDIT_PURCHASE (1000).
    data = (
        {"price_id": "price_pack", "quantity": quantity}
        if quantity
        else {"price_id": "price_pack", "quantity": "0"}
    )
    response = signed_in.post("/billing/checkout/", data)
    assert response.status_code == 303
    assert response["Location"] == "/pricing/"
    assert not sessions().exists()


def test_a_purchase_below_the_minimum_is_refused(signed_in, catalog, settings):
    settings.MIN_CREDIT_PURCHASE = 200
    signed_in.post("/billing/checkout/", {"price_id": "price_pack", "quantity": "1"})
    assert not sessions().exists()


@pytest.mark.parametrize("price_id", ["price_nope", "price_retired", ""])
def test_unknown_or_inactive_prices_are_refused(signed_in, catalog, price_id):
    response = signed_in.post("/billing/checkout/", {"price_id": price_id, "quantity": "1"})
    assert response.status_code == 303
    assert not sessions().exists()


def test_a_checkout_post_without_csrf_is_refused(user, catalog):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/billing/checkout/", {"price_id": "price_pack", "quantity": "1"})
    assert response.status_code == 403
    assert not sessions().exists()


def test_a_checkout_cannot_name_another_users_customer(signed_in, user, other_user, catalog):
    theirs = make_customer(other_user, "cus_theirs")
    signed_in.post(
        "/billing/checkout/",
        {"price_id": "price_pack", "quantity": "1", "customer": theirs.stripe_customer_id},
    )
    session = sessions().get()
    assert session.data["customer"] == StripeCustomer.objects.get(user=user).stripe_customer_id
    assert session.data["customer"] != "cus_theirs"


def test_checkout_requires_sign_in(client, catalog):
    response = client.post("/billing/checkout/", {"price_id": "price_pack", "quantity": "1"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_success_page_reloaded_ten_times_grants_nothing(signed_in, user, catalog):
    signed_in.post("/billing/checkout/", {"price_id": "price_pack", "quantity": "1"})
    session_id = sessions().get().object_id
    for _ in range(10):
        assert signed_in.get(f"/credits/success/?session_id={session_id}").status_code == 200
    assert balance(user)[2] == 0
    assert CreditLot.objects.count() == 0
    assert Payment.objects.count() == 0


def test_the_cancel_page_only_shows_status(signed_in):
    assert signed_in.get("/credits/cancel/").status_code == 200
    assert Payment.objects.count() == 0


def test_subscribing_opens_a_subscription_checkout(signed_in, catalog):
    response = signed_in.post("/billing/checkout/", {"price_id": "price_basic", "quantity": "1"})
    assert response.status_code == 303
    assert sessions().get().data["mode"] == "subscription"


def test_a_second_plan_cannot_be_bought_while_one_is_active(client, signed_in, user, catalog):
    customer = StripeCustomer.objects.create(user=user, stripe_customer_id="cus_me")
    deliver(client, subscription_event("customer.subscription.created", customer, catalog["basic"]))
    response = signed_in.post("/billing/checkout/", {"price_id": "price_pro", "quantity": "1"})
    assert response.status_code == 303
    assert not sessions().exists()


def test_another_users_receipt_is_404(client, signed_in, user, other_user, catalog):
    theirs = make_customer(other_user)
    deliver(client, purchase_completed(theirs, catalog["pack"]))
    number = Payment.objects.get().receipt_number
    assert signed_in.get(f"/billing/receipts/{number}/").status_code == 404
    client.force_login(other_user)
    page = client.get(f"/billing/receipts/{number}/")
    assert page.status_code == 200
    assert number in page.content.decode()


def test_billing_history_lists_payments_and_exports_csv(client, signed_in, user, catalog):
    mine = make_customer(user)
    deliver(client, purchase_completed(mine, catalog["pack"], quantity=2))
    signed_in.force_login(user)
    page = signed_in.get("/billing/").content.decode()
    number = Payment.objects.get().receipt_number
    assert number in page
    csv_body = b"".join(signed_in.get("/billing/history.csv").streaming_content).decode()
    lines = csv_body.strip().splitlines()
    assert lines[0].startswith("receipt,date")
    assert number in lines[1] and "20.00" in lines[1]


def test_the_pricing_page_and_landing_section_show_the_catalog(client, catalog):
    page = client.get("/pricing/").content.decode()
    assert "Basic" in page and "Pro" in page and "100 credits" in page
    assert "Old" not in page


def test_plan_change_cancel_and_resume_need_a_plan(signed_in, catalog):
    for url, data in [
        ("/billing/plan/change/", {"price_id": "price_pro"}),
        ("/billing/plan/cancel/", {}),
        ("/billing/plan/resume/", {}),
    ]:
        response = signed_in.post(url, data)
        assert response.status_code == 303
    assert UserSubscription.objects.count() == 0


def test_payment_pages_refuse_get_for_actions(signed_in):
    assert signed_in.get("/billing/checkout/").status_code == 405
    assert signed_in.get("/billing/portal/").status_code == 405


def test_payments_off_in_production_shows_no_checkout(signed_in, catalog, settings):
    settings.STRIPE_GATEWAY = "off"
    response = signed_in.post("/billing/checkout/", {"price_id": "price_pack", "quantity": "1"})
    assert response.status_code == 303
    assert not sessions().exists()
    assert "not available" in signed_in.get("/pricing/").content.decode()


def test_price_per_credit_and_kind_properties(catalog):
    pack = catalog["pack"]
    assert pack.is_one_time and not pack.is_subscription
    assert pack.price_per_credit == Decimal("0.1000")
    assert catalog["basic"].is_subscription


def test_a_refused_quantity_says_its_numbers_as_credits(signed_in, catalog, settings):
    settings.MAX_CREDIT_PURCHASE = 1500
    response = signed_in.post(
        "/billing/checkout/", {"price_id": "price_pack", "quantity": "20"}, follow=True
    )
    assert not sessions().exists()
    assert (
        "One purchase must be between 10 and 1,500 credits; 20 x 100 is 2,000. Change the quantity."
    ) in response.content.decode()


def test_the_pricing_page_writes_money_and_credits_one_way(client, catalog, settings):
    settings.MAX_CREDIT_PURCHASE = 1000
    html = client.get("/pricing/").content.decode()
    assert "$45.00" in html
    found = texts(html)
    assert found["plan-credits-price_pro"] == "2,000 credits every month ($0.0225 per credit)"
    assert found["plan-credits-price_basic"] == "500 credits every month ($0.03 per credit)"
    # The only pack holds 100 credits: 1 to 10 packs, not "10 to 1,000 credits".
    assert found["purchase-range"] == (
        "Pay-as-you-go credits never expire. One purchase buys 100 to 1,000 credits."
    )
    assert " USD" not in html
