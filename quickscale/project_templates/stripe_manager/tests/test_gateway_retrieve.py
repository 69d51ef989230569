"""``StripeGateway.retrieve_payment``: the payment intent with its latest charge, as plain data."""

import pytest

from stripe_manager.gateway import Gateway, GatewayError, StripeGateway
from stripe_manager.tests.test_gateway import (
    FakeStripe,
    _error,
    sdk_charge,
    sdk_payment_intent,
)


@pytest.fixture
def fake():
    return FakeStripe()


@pytest.fixture
def gateway(fake):
    return StripeGateway(api_key="sk_test_gateway", http_client=fake)


def test_retrieve_payment_expands_the_latest_charge_and_returns_plain_data(fake, gateway):
    charge = sdk_charge("ch_1", payment_intent="pi_1", amount=1000, amount_refunded=400)
    fake.answer(
        "GET",
        "/v1/payment_intents/pi_1",
        sdk_payment_intent("pi_1", amount=1000, latest_charge=charge),
    )

    details = gateway.retrieve_payment(payment_intent_id="pi_1")

    assert details == {
        "id": "pi_1",
        "status": "succeeded",
        "amount": 1000,
        "amount_received": 1000,
        "currency": "usd",
        "charge": "ch_1",
        "amount_refunded": 400,
        "refunded": False,
        "livemode": False,
    }
    [sent] = fake.sent
    assert sent.params == {"expand[0]": "latest_charge"}


def test_an_unknown_payment_is_a_gateway_error(fake, gateway):
    fake.answer("GET", "/v1/payment_intents/pi_x", _error("No such payment_intent"), status=404)

    with pytest.raises(GatewayError, match="Stripe could not look up the payment"):
        gateway.retrieve_payment(payment_intent_id="pi_x")


def test_a_gateway_without_lookups_says_so():
    class Minimal(Gateway):
        create_customer = create_checkout_session = create_portal_session = None  # type: ignore[assignment]
        upgrade_subscription = schedule_downgrade = set_cancel_at_period_end = None  # type: ignore[assignment]
        create_refund = list_prices = None  # type: ignore[assignment]

    with pytest.raises(GatewayError, match="cannot look up payments"):
        Minimal().retrieve_payment(payment_intent_id="pi_1")
