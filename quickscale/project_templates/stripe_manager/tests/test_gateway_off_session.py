"""Auto top-up through the real ``StripeGateway``: the checkout that saves the card and the
off-session charge, with Stripe's servers faked at the HTTP edge (``test_gateway``'s fake)."""

from __future__ import annotations

import pytest
import stripe

from stripe_manager.gateway import CardRefused, GatewayError, OffSessionPayment, StripeGateway
from stripe_manager.tests.test_gateway import FakeStripe, _metadata, _new, sdk_checkout_session

CHARGE = {
    "customer_id": "cus_1",
    "payment_method_id": "pm_1",
    "amount": 1000,
    "currency": "usd",
    "description": "Auto top-up: 100 credits",
    "idempotency_key": "auto-top-up:7:3",
    "metadata": {"auto_top_up": "auto-top-up:7:3", "user_id": "7"},
}


@pytest.fixture
def fake() -> FakeStripe:
    return FakeStripe()


@pytest.fixture
def gateway(fake: FakeStripe) -> StripeGateway:
    return StripeGateway(api_key="sk_test_gateway", http_client=fake)


def sdk_intent(intent_id: str, *, status: str) -> stripe.PaymentIntent:
    intent = _new(stripe.PaymentIntent, id=intent_id, object="payment_intent")
    intent.amount = 1000
    intent.amount_received = 1000 if status == "succeeded" else 0
    intent.currency = "usd"
    intent.customer = "cus_1"
    intent.payment_method = "pm_1"
    intent.status = status
    intent.livemode = False
    intent.metadata = _metadata({"auto_top_up": "auto-top-up:7:3"})
    return intent


def card_error(code: str, message: str, *, intent_id: str) -> dict[str, object]:
    """Stripe's 402 body for a refused off-session charge (the failed intent inside)."""
    failed = sdk_intent(intent_id, status="requires_payment_method").to_dict(for_json=True)
    return {
        "error": {
            "type": "card_error",
            "code": code,
            "message": message,
            "payment_intent": failed,
        }
    }


def test_a_credit_checkout_that_saves_the_card_asks_for_off_session_use(fake, gateway):
    fake.answer("POST", "/v1/checkout/sessions", sdk_checkout_session("cs_1", "https://x/cs_1"))

    gateway.create_checkout_session(
        customer_id="cus_1",
        price_id="price_pack",
        quantity=1,
        mode="payment",
        success_url="https://app.example.com/ok",
        cancel_url="https://app.example.com/cancel",
        metadata={"auto_top_up_card": "1"},
        save_card=True,
    )

    params = fake.sent[0].params
    assert params["payment_intent_data[setup_future_usage]"] == "off_session"
    assert params["payment_intent_data[metadata][auto_top_up_card]"] == "1"


def test_a_checkout_that_does_not_save_the_card_leaves_it_unsaved(fake, gateway):
    fake.answer("POST", "/v1/checkout/sessions", sdk_checkout_session("cs_1", "https://x/cs_1"))

    gateway.create_checkout_session(
        customer_id="cus_1",
        price_id="price_pack",
        quantity=1,
        mode="payment",
        success_url="https://app.example.com/ok",
        cancel_url="https://app.example.com/cancel",
        metadata={},
    )

    assert "payment_intent_data[setup_future_usage]" not in fake.sent[0].params


def test_an_off_session_charge_confirms_with_the_saved_card_and_the_idempotency_key(fake, gateway):
    fake.answer("POST", "/v1/payment_intents", sdk_intent("pi_1", status="succeeded"))

    paid = gateway.charge_saved_card(**CHARGE)

    assert paid == OffSessionPayment(payment_intent_id="pi_1", status="succeeded")
    [sent] = fake.sent
    assert (sent.method, sent.path) == ("POST", "/v1/payment_intents")
    assert sent.params == {
        "amount": "1000",
        "currency": "usd",
        "customer": "cus_1",
        "payment_method": "pm_1",
        "off_session": "true",
        "confirm": "true",
        "description": "Auto top-up: 100 credits",
        "metadata[auto_top_up]": "auto-top-up:7:3",
        "metadata[user_id]": "7",
    }
    assert sent.headers["Idempotency-Key"] == "auto-top-up:7:3"


@pytest.mark.parametrize(
    ("code", "needs_authentication"),
    [("authentication_required", True), ("card_declined", False)],
)
def test_a_refused_card_is_a_card_refusal_with_stripes_code_and_intent(
    fake, gateway, code, needs_authentication
):
    fake.answer(
        "POST",
        "/v1/payment_intents",
        card_error(code, "Your card was declined.", intent_id="pi_failed"),
        status=402,
    )

    with pytest.raises(CardRefused) as refused:
        gateway.charge_saved_card(**CHARGE)

    assert refused.value.code == code
    assert refused.value.needs_authentication is needs_authentication
    assert refused.value.payment_intent_id == "pi_failed"
    assert len(fake.sent) == 1  # a card's answer is final: no retry


def test_an_intent_left_needing_action_counts_as_needing_authentication(fake, gateway):
    fake.answer("POST", "/v1/payment_intents", sdk_intent("pi_3ds", status="requires_action"))

    with pytest.raises(CardRefused) as refused:
        gateway.charge_saved_card(**CHARGE)

    assert refused.value.needs_authentication
    assert refused.value.payment_intent_id == "pi_3ds"


def test_a_failing_stripe_is_a_gateway_error_retried_with_the_same_key(fake, gateway):
    fake.answer(
        "POST",
        "/v1/payment_intents",
        {"error": {"type": "api_error", "message": "Something went wrong."}},
        status=500,
    )

    with pytest.raises(GatewayError) as failed:
        gateway.charge_saved_card(**CHARGE)

    assert not isinstance(failed.value, CardRefused)
    assert [s.headers["Idempotency-Key"] for s in fake.sent] == ["auto-top-up:7:3"] * 3
