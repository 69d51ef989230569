"""``StripeGateway.preview_upgrade`` and the upgrade that reuses its proration date.

Stripe's servers are faked at the HTTP edge (see ``test_gateway``): the SDK
builds and encodes the real requests.
"""

from __future__ import annotations

import pytest
import stripe

from stripe_manager.gateway import Gateway, GatewayError, StripeGateway, UpgradePreview
from stripe_manager.tests.test_gateway import (
    NOW,
    FakeStripe,
    _error,
    _new,
    sdk_subscription,
)


@pytest.fixture
def fake():
    return FakeStripe()


@pytest.fixture
def gateway(fake):
    return StripeGateway(api_key="sk_test_gateway", http_client=fake)


def sdk_preview_invoice(*, amount_due: int, currency: str = "usd") -> stripe.Invoice:
    # A preview invoice has no id (it is never saved).
    invoice = _new(stripe.Invoice, object="invoice")
    invoice.amount_due = amount_due
    invoice.currency = currency
    invoice.total = amount_due
    invoice.customer = "cus_1"
    return invoice


def test_the_preview_asks_stripe_for_the_upgrade_invoice_as_of_now(fake, gateway, monkeypatch):
    monkeypatch.setattr("stripe_manager.gateway.time.time", lambda: NOW + 0.7)
    fake.answer("POST", "/v1/invoices/create_preview", sdk_preview_invoice(amount_due=1999))

    preview = gateway.preview_upgrade(subscription_id="sub_1", item_id="si_1", price_id="price_pro")

    assert preview == UpgradePreview(amount_due=1999, currency="usd", proration_date=NOW)
    [sent] = fake.sent
    assert (sent.method, sent.path) == ("POST", "/v1/invoices/create_preview")
    assert sent.params == {
        "subscription": "sub_1",
        "subscription_details[items][0][id]": "si_1",
        "subscription_details[items][0][price]": "price_pro",
        # As the update will: the proration invoiced at once, as of the same moment.
        "subscription_details[proration_behavior]": "always_invoice",
        "subscription_details[proration_date]": str(NOW),
    }


def test_the_confirmed_upgrade_reuses_the_previews_proration_date(fake, gateway):
    fake.answer("GET", "/v1/subscriptions/sub_1", sdk_subscription(price_id="price_basic"))
    fake.answer("POST", "/v1/subscriptions/sub_1", sdk_subscription(price_id="price_pro"))

    gateway.upgrade_subscription(
        subscription_id="sub_1", item_id="si_1", price_id="price_pro", proration_date=NOW - 60
    )

    update = fake.sent[1]
    assert update.params["proration_date"] == str(NOW - 60)
    assert update.params["proration_behavior"] == "always_invoice"
    assert update.params["items[0][price]"] == "price_pro"


def test_an_upgrade_without_a_preview_sends_no_proration_date(fake, gateway):
    fake.answer("GET", "/v1/subscriptions/sub_1", sdk_subscription(price_id="price_basic"))
    fake.answer("POST", "/v1/subscriptions/sub_1", sdk_subscription(price_id="price_pro"))

    gateway.upgrade_subscription(subscription_id="sub_1", item_id="si_1", price_id="price_pro")

    assert "proration_date" not in fake.sent[1].params


def test_a_refused_preview_is_a_gateway_error_with_stripes_message(fake, gateway):
    fake.answer(
        "POST",
        "/v1/invoices/create_preview",
        _error("No such price: 'price_gone'", code="resource_missing"),
        status=400,
    )

    with pytest.raises(GatewayError, match="Stripe could not preview the plan change"):
        gateway.preview_upgrade(subscription_id="sub_1", item_id="si_1", price_id="price_gone")


def test_a_gateway_without_previews_says_so():
    class Minimal(StripeGateway):
        pass

    with pytest.raises(GatewayError, match="cannot preview"):
        Gateway.preview_upgrade(
            Minimal(api_key="sk_test"), subscription_id="s", item_id="i", price_id="p"
        )
