"""The real ``StripeGateway`` through the pinned SDK, with Stripe's servers faked at the HTTP edge.

Only the SDK's HTTP client is replaced (``stripe.HTTPClient`` is the SDK's own
extension point): URL building, form encoding, headers, retries, JSON parsing
and error mapping all run for real. Answers are Stripe-shaped JSON for the
pinned API version, built as the SDK's own resource classes (``stripe.Price``,
``stripe.Subscription`` ...) so mypy checks each fixture's fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from stripe_manager.gateway import (
    API_VERSION,
    CheckoutSession,
    GatewayError,
    PriceInfo,
    RefundResult,
    StripeGateway,
)

if TYPE_CHECKING:
    from stripe._stripe_object import UntypedStripeObject

NOW = 1_790_000_000
MONTH = 30 * 24 * 3600


# An SDK object, an error body (a dict, as Stripe's errors are not resources), or a network failure.
Answer = stripe.StripeObject | dict[str, Any] | Exception


@dataclass
class Sent:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


class FakeStripe(stripe.HTTPClient):
    """Answers requests from a script of (method, path) -> queued JSON answers; records them."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Sent] = []
        self.answers: dict[tuple[str, str], list[tuple[int, Answer]]] = {}

    def answer(self, method: str, path: str, body: Answer, status: int = 200) -> None:
        self.answers.setdefault((method, path), []).append((status, body))

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        query = parts.query if method == "get" else (post_data or "")
        if isinstance(query, bytes):
            query = query.decode()
        self.sent.append(
            Sent(method.upper(), parts.path, dict(parse_qsl(query)), dict(headers or {}))
        )
        queue = self.answers.get((method.upper(), parts.path))
        if not queue:
            return json.dumps(_error(f"no fake answer for {method} {parts.path}")), 404, {}
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(body, Exception):
            raise body
        if isinstance(body, stripe.StripeObject):
            body = body.to_dict(for_json=True)
        return json.dumps(body), status, {"request-id": "req_fake"}

    def _sleep_time_seconds(self, num_retries: int) -> float:
        return 0.0  # retries happen, without the back-off wait

    def close(self) -> None:
        pass


def _error(message: str, *, kind: str = "invalid_request_error", code: str = "") -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "code": code or None}}


@pytest.fixture
def fake():
    return FakeStripe()


@pytest.fixture
def gateway(fake):
    return StripeGateway(api_key="sk_test_gateway", http_client=fake)


# --------------------------------------------------------------------------- typed answers
#
# Stripe's answers are built as the SDK's own resource classes and set field by
# field, so mypy checks every field name and type against the pinned API version
# (a misplaced field is a type error here as in the gateway); the fake serializes
# them to the JSON Stripe would send.

_O = TypeVar("_O", bound=stripe.StripeObject)


def _new(cls: type[_O], **identity: str) -> _O:
    """An empty SDK object of ``cls`` (its ``id``/``object`` from ``identity``)."""
    return cls.construct_from(dict(identity), "sk_test_gateway")


def _metadata(values: dict[str, str] | None) -> UntypedStripeObject[str]:
    # Metadata is untyped in the SDK too (any key); the cast only names its class.
    return cast("UntypedStripeObject[str]", _new(stripe.StripeObject, **(values or {})))


def _list(items: list[_O], *, url: str, has_more: bool = False) -> stripe.ListObject[_O]:
    page: stripe.ListObject[_O] = _new(stripe.ListObject, object="list")
    page.data = list(items)
    page.has_more = has_more
    page.url = url
    return page


def sdk_customer(customer_id: str) -> stripe.Customer:
    customer = _new(stripe.Customer, id=customer_id, object="customer")
    customer.livemode = False
    return customer


def sdk_checkout_session(session_id: str, url: str) -> stripe.checkout.Session:
    session = _new(stripe.checkout.Session, id=session_id, object="checkout.session")
    session.url = url
    session.status = "open"
    return session


def sdk_portal_session(session_id: str, url: str) -> stripe.billing_portal.Session:
    session = _new(stripe.billing_portal.Session, id=session_id, object="billing_portal.session")
    session.url = url
    session.customer = "cus_1"
    return session


def sdk_product(
    product_id: str,
    *,
    name: str,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    active: bool = True,
) -> stripe.Product:
    product = _new(stripe.Product, id=product_id, object="product")
    product.active = active
    product.name = name
    product.description = description
    product.metadata = _metadata(metadata)
    product.livemode = False
    return product


def sdk_price(
    price_id: str,
    *,
    product: str | stripe.Product,
    unit_amount: int = 1500,
    interval: str = "none",
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
) -> stripe.Price:
    price = _new(stripe.Price, id=price_id, object="price")
    price.active = True
    price.currency = currency
    price.metadata = _metadata(metadata)
    price.product = product
    price.unit_amount = unit_amount
    price.livemode = False
    price.recurring = None
    price.type = "one_time"
    if interval != "none":
        recurring = _new(stripe.Price.Recurring)
        recurring.interval = interval
        recurring.interval_count = 1
        recurring.usage_type = "licensed"
        price.recurring = recurring
        price.type = "recurring"
    return price


def sdk_subscription(
    *,
    price_id: str = "price_pro",
    schedule: str | None = None,
    cancel_at_period_end: bool = False,
) -> stripe.Subscription:
    item = _new(stripe.SubscriptionItem, id="si_1", object="subscription_item")
    item.price = sdk_price(price_id, product=f"prod_{price_id}", interval="month")
    item.quantity = 1
    item.subscription = "sub_1"
    # Since 2025-03-31.basil a subscription's period lives on its items.
    item.current_period_start = NOW
    item.current_period_end = NOW + MONTH
    subscription = _new(stripe.Subscription, id="sub_1", object="subscription")
    subscription.customer = "cus_1"
    subscription.status = "active"
    subscription.cancel_at_period_end = cancel_at_period_end
    subscription.schedule = schedule
    subscription.items = _list([item], url="/v1/subscription_items?subscription=sub_1")
    return subscription


def sdk_schedule(
    schedule_id: str,
    phases: list[tuple[str, int, int]],
    *,
    current: int = 0,
    status: str = "active",
) -> stripe.SubscriptionSchedule:
    phase_objs = []
    for price_id, start, end in phases:
        item = _new(stripe.SubscriptionSchedule.Phase.Item)
        item.price = price_id
        item.quantity = 1
        phase = _new(stripe.SubscriptionSchedule.Phase)
        phase.start_date = start
        phase.end_date = end
        phase.items = [item]
        phase.proration_behavior = "create_prorations"
        phase_objs.append(phase)
    schedule = _new(stripe.SubscriptionSchedule, id=schedule_id, object="subscription_schedule")
    schedule.subscription = "sub_1"
    schedule.status = status
    schedule.end_behavior = "release"
    schedule.phases = phase_objs
    schedule.current_phase = None
    if phases:
        current_phase = _new(stripe.SubscriptionSchedule.CurrentPhase)
        current_phase.start_date = phase_objs[current].start_date
        current_phase.end_date = phase_objs[current].end_date
        schedule.current_phase = current_phase
    return schedule


def sdk_refund(
    refund_id: str, *, amount: int, payment_intent: str, status: str = "succeeded"
) -> stripe.Refund:
    refund = _new(stripe.Refund, id=refund_id, object="refund")
    refund.amount = amount
    refund.charge = "ch_1"
    refund.currency = "usd"
    refund.payment_intent = payment_intent
    refund.status = status
    return refund


def sdk_charge(
    charge_id: str, *, payment_intent: str, amount: int, amount_refunded: int = 0
) -> stripe.Charge:
    charge = _new(stripe.Charge, id=charge_id, object="charge")
    charge.amount = amount
    charge.amount_refunded = amount_refunded
    charge.refunded = amount_refunded >= amount
    charge.currency = "usd"
    charge.customer = "cus_1"
    charge.payment_intent = payment_intent
    charge.livemode = False
    return charge


def sdk_payment_intent(
    intent_id: str, *, amount: int, latest_charge: str | stripe.Charge | None
) -> stripe.PaymentIntent:
    intent = _new(stripe.PaymentIntent, id=intent_id, object="payment_intent")
    intent.amount = amount
    intent.amount_received = amount
    intent.currency = "usd"
    intent.status = "succeeded"
    intent.livemode = False
    intent.latest_charge = latest_charge
    return intent


def sdk_invoice_payment(
    payment_id: str, *, invoice: str, payment_intent: str, amount: int, created: int
) -> stripe.InvoicePayment:
    payment = _new(stripe.InvoicePayment.Payment)
    payment.type = "payment_intent"
    payment.payment_intent = payment_intent
    row = _new(stripe.InvoicePayment, id=payment_id, object="invoice_payment")
    row.invoice = invoice
    row.amount_paid = amount
    row.amount_requested = amount
    row.currency = "usd"
    row.is_default = True
    row.status = "paid"
    row.created = created
    row.payment = payment
    return row


# --------------------------------------------------------------------------- every request


def test_requests_carry_the_secret_key_and_the_pinned_api_version(fake, gateway):
    fake.answer("POST", "/v1/customers", sdk_customer("cus_1"))

    gateway.create_customer(email="a@example.com", user_id=1, idempotency_key="customer-1")

    headers = fake.sent[0].headers
    assert headers["Authorization"] == "Bearer sk_test_gateway"
    assert headers["Stripe-Version"] == API_VERSION


# --------------------------------------------------------------------------- customers


def test_create_customer_sends_email_user_id_and_idempotency_key(fake, gateway):
    fake.answer("POST", "/v1/customers", sdk_customer("cus_new"))

    customer_id = gateway.create_customer(
        email="payer@example.com", user_id=42, idempotency_key="customer-user-42"
    )

    assert customer_id == "cus_new"
    [sent] = fake.sent
    assert (sent.method, sent.path) == ("POST", "/v1/customers")
    assert sent.params == {"email": "payer@example.com", "metadata[user_id]": "42"}
    assert sent.headers["Idempotency-Key"] == "customer-user-42"


# --------------------------------------------------------------------------- checkout and portal


def test_checkout_for_credits_is_a_payment_session_with_the_quantity(fake, gateway):
    fake.answer(
        "POST",
        "/v1/checkout/sessions",
        sdk_checkout_session("cs_1", "https://checkout.stripe.com/c/cs_1"),
    )

    session = gateway.create_checkout_session(
        customer_id="cus_1",
        price_id="price_pack",
        quantity=3,
        mode="payment",
        success_url="https://app.example.com/ok",
        cancel_url="https://app.example.com/cancel",
        metadata={"user_id": "7"},
    )

    assert session == CheckoutSession(session_id="cs_1", url="https://checkout.stripe.com/c/cs_1")
    [sent] = fake.sent
    assert (sent.method, sent.path) == ("POST", "/v1/checkout/sessions")
    assert sent.params == {
        "mode": "payment",
        "customer": "cus_1",
        "line_items[0][price]": "price_pack",
        "line_items[0][quantity]": "3",
        "success_url": "https://app.example.com/ok",
        "cancel_url": "https://app.example.com/cancel",
        "metadata[user_id]": "7",
        "payment_intent_data[metadata][user_id]": "7",
    }


def test_checkout_for_a_plan_is_a_subscription_session_carrying_the_metadata(fake, gateway):
    fake.answer("POST", "/v1/checkout/sessions", sdk_checkout_session("cs_2", "https://x/cs_2"))

    gateway.create_checkout_session(
        customer_id="cus_1",
        price_id="price_basic",
        quantity=1,
        mode="subscription",
        success_url="https://app.example.com/ok",
        cancel_url="https://app.example.com/cancel",
        metadata={"user_id": "7"},
    )

    params = fake.sent[0].params
    assert params["mode"] == "subscription"
    assert params["subscription_data[metadata][user_id]"] == "7"
    assert not any(key.startswith("payment_intent_data") for key in params)


def test_portal_session_returns_its_url(fake, gateway):
    fake.answer(
        "POST",
        "/v1/billing_portal/sessions",
        sdk_portal_session("bps_1", "https://billing.stripe.com/p/1"),
    )

    url = gateway.create_portal_session(customer_id="cus_1", return_url="https://app/billing")

    assert url == "https://billing.stripe.com/p/1"
    assert fake.sent[0].params == {"customer": "cus_1", "return_url": "https://app/billing"}


# --------------------------------------------------------------------------- plan changes


def test_upgrade_switches_the_item_now_and_invoices_the_proration(fake, gateway):
    fake.answer("GET", "/v1/subscriptions/sub_1", sdk_subscription(price_id="price_basic"))
    fake.answer("POST", "/v1/subscriptions/sub_1", sdk_subscription(price_id="price_pro"))

    gateway.upgrade_subscription(subscription_id="sub_1", item_id="si_1", price_id="price_pro")

    assert [(s.method, s.path) for s in fake.sent] == [
        ("GET", "/v1/subscriptions/sub_1"),
        ("POST", "/v1/subscriptions/sub_1"),
    ]
    assert fake.sent[1].params == {
        "items[0][id]": "si_1",
        "items[0][price]": "price_pro",
        "proration_behavior": "always_invoice",
        # The plan switches only once the proration invoice is paid.
        "payment_behavior": "pending_if_incomplete",
    }


def test_upgrade_of_a_subscription_set_to_cancel_resumes_it_in_a_call_of_its_own(fake, gateway):
    cancelling = sdk_subscription(price_id="price_basic", cancel_at_period_end=True)
    fake.answer("GET", "/v1/subscriptions/sub_1", cancelling)
    fake.answer("POST", "/v1/subscriptions/sub_1", sdk_subscription(price_id="price_pro"))

    gateway.upgrade_subscription(subscription_id="sub_1", item_id="si_1", price_id="price_pro")

    assert [(s.method, s.path) for s in fake.sent] == [
        ("GET", "/v1/subscriptions/sub_1"),
        ("POST", "/v1/subscriptions/sub_1"),
        ("POST", "/v1/subscriptions/sub_1"),
    ]
    # Stripe refuses other parameters beside a pending (pending_if_incomplete) update.
    assert fake.sent[1].params == {"cancel_at_period_end": "false"}
    assert fake.sent[2].params["payment_behavior"] == "pending_if_incomplete"
    assert "cancel_at_period_end" not in fake.sent[2].params


def test_upgrade_releases_a_pending_downgrade_schedule_first(fake, gateway):
    fake.answer("GET", "/v1/subscriptions/sub_1", sdk_subscription(schedule="sub_sched_1"))
    fake.answer(
        "POST",
        "/v1/subscription_schedules/sub_sched_1/release",
        sdk_schedule("sub_sched_1", [], status="released"),
    )
    fake.answer("POST", "/v1/subscriptions/sub_1", sdk_subscription())

    gateway.upgrade_subscription(subscription_id="sub_1", item_id="si_1", price_id="price_pro")

    assert [(s.method, s.path) for s in fake.sent] == [
        ("GET", "/v1/subscriptions/sub_1"),
        ("POST", "/v1/subscription_schedules/sub_sched_1/release"),
        ("POST", "/v1/subscriptions/sub_1"),
    ]
    assert fake.sent[2].params["proration_behavior"] == "always_invoice"


def test_downgrade_creates_a_schedule_that_switches_price_at_period_end(fake, gateway):
    fake.answer("GET", "/v1/subscriptions/sub_1", sdk_subscription(price_id="price_pro"))
    created = sdk_schedule("sub_sched_9", [("price_pro", NOW, NOW + MONTH)])
    fake.answer("POST", "/v1/subscription_schedules", created)
    fake.answer("POST", "/v1/subscription_schedules/sub_sched_9", created)

    gateway.schedule_downgrade(subscription_id="sub_1", price_id="price_basic")

    assert [(s.method, s.path) for s in fake.sent] == [
        ("GET", "/v1/subscriptions/sub_1"),
        ("POST", "/v1/subscription_schedules"),
        ("POST", "/v1/subscription_schedules/sub_sched_9"),
    ]
    assert fake.sent[1].params == {"from_subscription": "sub_1"}
    assert fake.sent[2].params == {
        "end_behavior": "release",
        # The current phase keeps the current price until the period ends ...
        "phases[0][items][0][price]": "price_pro",
        "phases[0][items][0][quantity]": "1",
        "phases[0][start_date]": str(NOW),
        "phases[0][end_date]": str(NOW + MONTH),
        # ... then the lower price starts, with nothing prorated.
        "phases[1][items][0][price]": "price_basic",
        "phases[1][items][0][quantity]": "1",
        "phases[1][duration][interval]": "month",
        "phases[1][duration][interval_count]": "1",
        "phases[1][proration_behavior]": "none",
    }


def test_downgrade_reuses_an_existing_schedule_from_its_current_phase(fake, gateway):
    # A schedule whose first phase is already over: the update must start from the current one.
    fake.answer("GET", "/v1/subscriptions/sub_1", sdk_subscription(schedule="sub_sched_1"))
    existing = sdk_schedule(
        "sub_sched_1",
        [("price_max", NOW - MONTH, NOW), ("price_pro", NOW, NOW + MONTH)],
        current=1,
    )
    fake.answer("GET", "/v1/subscription_schedules/sub_sched_1", existing)
    fake.answer("POST", "/v1/subscription_schedules/sub_sched_1", existing)

    gateway.schedule_downgrade(subscription_id="sub_1", price_id="price_basic")

    assert [(s.method, s.path) for s in fake.sent] == [
        ("GET", "/v1/subscriptions/sub_1"),
        ("GET", "/v1/subscription_schedules/sub_sched_1"),
        ("POST", "/v1/subscription_schedules/sub_sched_1"),
    ]
    params = fake.sent[2].params
    assert params["phases[0][items][0][price]"] == "price_pro"
    assert params["phases[0][start_date]"] == str(NOW)
    assert params["phases[0][end_date]"] == str(NOW + MONTH)
    assert params["phases[1][items][0][price]"] == "price_basic"
    assert "phases[2][items][0][price]" not in params


@pytest.mark.parametrize("cancel", [True, False])
def test_cancel_and_resume_set_cancel_at_period_end(fake, gateway, cancel):
    fake.answer("POST", "/v1/subscriptions/sub_1", sdk_subscription())

    gateway.set_cancel_at_period_end(subscription_id="sub_1", cancel=cancel)

    [sent] = fake.sent
    assert (sent.method, sent.path) == ("POST", "/v1/subscriptions/sub_1")
    assert sent.params == {"cancel_at_period_end": str(cancel).lower()}


# --------------------------------------------------------------------------- refunds


def test_refund_sends_amount_in_cents_with_the_idempotency_key(fake, gateway):
    fake.answer(
        "POST",
        "/v1/refunds",
        sdk_refund("re_1", amount=550, payment_intent="pi_1", status="pending"),
    )

    result = gateway.create_refund(
        payment_intent_id="pi_1",
        amount=550,
        idempotency_key="refund-abc",
        metadata={"refund_key": "refund-abc", "receipt_number": "R-1"},
    )

    assert result == RefundResult(refund_id="re_1", status="pending", amount=550)
    [sent] = fake.sent
    assert (sent.method, sent.path) == ("POST", "/v1/refunds")
    assert sent.headers["Idempotency-Key"] == "refund-abc"
    assert sent.params == {
        "payment_intent": "pi_1",
        "amount": "550",
        "metadata[refund_key]": "refund-abc",
        "metadata[receipt_number]": "R-1",
    }


def test_a_retried_refund_repeats_the_same_idempotency_key(fake, gateway):
    fake.answer("POST", "/v1/refunds", _error("Try again", kind="api_error"), status=500)
    fake.answer(
        "POST",
        "/v1/refunds",
        sdk_refund("re_2", amount=100, payment_intent="pi_1"),
    )

    result = gateway.create_refund(
        payment_intent_id="pi_1", amount=100, idempotency_key="refund-once", metadata={}
    )

    assert result.refund_id == "re_2"
    assert [s.headers["Idempotency-Key"] for s in fake.sent] == ["refund-once", "refund-once"]


# --------------------------------------------------------------------------- errors


def test_a_stripe_refusal_becomes_a_gateway_error_with_stripes_message(fake, gateway):
    fake.answer(
        "POST",
        "/v1/refunds",
        _error("Charge ch_1 has already been refunded.", code="charge_already_refunded"),
        status=400,
    )

    with pytest.raises(
        GatewayError, match=r"Stripe could not refund the payment: .*already been refunded"
    ):
        gateway.create_refund(
            payment_intent_id="pi_1", amount=100, idempotency_key="k", metadata={}
        )


def test_an_unreachable_stripe_becomes_a_gateway_error_after_retries(fake, gateway):
    fake.answer(
        "POST",
        "/v1/subscriptions/sub_1",
        stripe.APIConnectionError("Connection refused", should_retry=True),  # type: ignore[no-untyped-call]
    )

    with pytest.raises(GatewayError, match="Stripe could not update the subscription"):
        gateway.set_cancel_at_period_end(subscription_id="sub_1", cancel=True)
    assert len(fake.sent) == 3  # the first try and two retries


# --------------------------------------------------------------------------- catalog


def _page(prices: list[stripe.Price], *, has_more: bool = False) -> stripe.ListObject[stripe.Price]:
    return _list(prices, url="/v1/prices", has_more=has_more)


def test_list_prices_pages_through_active_prices_with_their_products(fake, gateway):
    pack = sdk_product(
        "prod_pack",
        name="Credit pack",
        description="100 credits",
        metadata={"credit_amount": "100"},
    )
    plans = sdk_product(
        "prod_plans", name="Pro", metadata={"credit_amount": "999", "display_order": "2"}
    )
    first = _page(
        [
            sdk_price("price_pack", product=pack, unit_amount=1000),
        ],
        has_more=True,
    )
    second = _page(
        [
            sdk_price(
                "price_pro_year",
                product=plans,
                unit_amount=45000,
                interval="year",
                currency="eur",
                metadata={"credit_amount": "24000"},
            ),
        ]
    )
    fake.answer("GET", "/v1/prices", first)
    fake.answer("GET", "/v1/prices", second)

    prices = gateway.list_prices()

    assert prices == [
        PriceInfo(
            price_id="price_pack",
            product_id="prod_pack",
            name="Credit pack",
            description="100 credits",
            unit_amount=1000,
            currency="usd",
            interval="none",
            credit_amount=Decimal("100"),  # from the product
            display_order=0,
        ),
        PriceInfo(
            price_id="price_pro_year",
            product_id="prod_plans",
            name="Pro",
            description="",
            unit_amount=45000,
            currency="eur",
            interval="year",
            credit_amount=Decimal("24000"),  # the price's own metadata wins
            display_order=2,
        ),
    ]
    assert fake.sent[0].params == {"active": "true", "expand[0]": "data.product", "limit": "100"}
    assert fake.sent[1].params["starting_after"] == "price_pack"


def test_list_prices_of_one_product_filters_by_product(fake, gateway):
    fake.answer("GET", "/v1/prices", _page([]))

    assert gateway.list_prices(product_id="prod_pack") == []
    assert fake.sent[0].params["product"] == "prod_pack"


def test_list_prices_skips_archived_products_and_tolerates_bad_metadata(fake, gateway):
    archived = sdk_product("prod_old", name="Old", active=False, metadata={"credit_amount": "10"})
    odd = sdk_product(
        "prod_odd", name="Odd", metadata={"credit_amount": "lots", "display_order": "first"}
    )
    nan = sdk_product("prod_nan", name="NaN", metadata={"credit_amount": "NaN"})
    fake.answer(
        "GET",
        "/v1/prices",
        _page(
            [
                sdk_price("price_old", product=archived, unit_amount=500),
                sdk_price("price_odd", product=odd, unit_amount=700),
                sdk_price("price_nan", product=nan, unit_amount=900),
            ]
        ),
    )

    prices = {info.price_id: info for info in gateway.list_prices()}

    assert set(prices) == {"price_odd", "price_nan"}
    assert prices["price_odd"].credit_amount is None
    assert prices["price_odd"].display_order == 0
    assert prices["price_nan"].credit_amount is None


# --------------------------------------------------------------------------- invoice payments


def test_the_invoice_payments_list_gives_the_paid_payment_intents_oldest_first(fake, gateway):
    later = sdk_invoice_payment(
        "inpay_2", invoice="in_1", payment_intent="pi_2", amount=900, created=NOW
    )
    earlier = sdk_invoice_payment(
        "inpay_1", invoice="in_1", payment_intent="pi_1", amount=100, created=NOW - 60
    )
    fake.answer("GET", "/v1/invoice_payments", _list([later, earlier], url="/v1/invoice_payments"))

    intents = gateway.invoice_payment_intents(invoice_id="in_1")

    assert intents == ["pi_1", "pi_2"]
    [request] = fake.sent
    assert request.params == {"invoice": "in_1", "status": "paid", "limit": "100"}
