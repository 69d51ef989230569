"""``manage.py stripe_check`` against a Stripe account faked at the HTTP edge.

As in ``test_gateway``, only the SDK's HTTP client is replaced (the SDK builds
its default client through ``new_default_http_client``, which the fixture swaps
for ``FakeStripe``): the command, the gateway and the SDK's request and error
handling all run for real. A correct account passes; each misconfiguration
gives its own line and a non-zero exit; a refused key and keys for the other
mode stop the check with one line. Every run only reads.
"""

from __future__ import annotations

import re
import secrets
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from stripe_manager import shapes
from stripe_manager.gateway import API_VERSION
from stripe_manager.models import StripeProduct
from stripe_manager.tests.test_gateway import FakeStripe
from stripe_manager.webhooks import HANDLED_EVENT_TYPES

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "going-live.md"

SITE = "https://shop.example.com"
WEBHOOK_URL = f"{SITE}/stripe/webhook/"
NOW = 1_790_000_000


@pytest.fixture
def fake(monkeypatch):
    fake = FakeStripe()
    monkeypatch.setattr(
        "stripe._stripe_client.new_default_http_client", lambda *args, **kwargs: fake
    )
    return fake


@pytest.fixture(autouse=True)
def _stripe_on(settings):
    settings.STRIPE_ENABLED = True
    settings.STRIPE_GATEWAY = "stripe"
    settings.STRIPE_LIVE_MODE = False
    settings.STRIPE_SECRET_KEY = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"
    settings.STRIPE_PUBLIC_KEY = "pk_test_" + "TYooMQauvdEDq54NiTphI7jx"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(32)
    settings.SITE_URL = SITE


def endpoint(**fields: Any) -> dict[str, Any]:
    return {
        "id": "we_1",
        "object": "webhook_endpoint",
        "api_version": API_VERSION,
        "application": None,
        "created": NOW,
        "description": None,
        "enabled_events": list(HANDLED_EVENT_TYPES),
        "livemode": False,
        "metadata": {},
        "status": "enabled",
        "url": WEBHOOK_URL,
        **fields,
    }


def portal(*, switching: bool = False) -> dict[str, Any]:
    return {
        "id": "bpc_1",
        "object": "billing_portal.configuration",
        "active": True,
        "application": None,
        "business_profile": {"headline": None, "privacy_policy_url": None},
        "created": NOW,
        "default_return_url": f"{SITE}/credits/",
        "features": {
            "customer_update": {"allowed_updates": ["email"], "enabled": True},
            "invoice_history": {"enabled": True},
            "payment_method_update": {"enabled": True},
            "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
            "subscription_update": {
                "default_allowed_updates": ["price"] if switching else [],
                "enabled": switching,
                "products": [],
                "proration_behavior": "always_invoice",
            },
        },
        "is_default": True,
        "livemode": False,
        "metadata": {},
        "updated": NOW,
    }


def page(url: str, data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "url": url}


def priced(price_id: str, *, credit_amount: str | None, interval: str = "none") -> dict[str, Any]:
    metadata = {"credit_amount": credit_amount} if credit_amount else {}
    product = shapes.product(f"prod_{price_id}", name=price_id.title(), metadata=metadata)
    price = shapes.price(price_id, product_id=product["id"], unit_amount=1000, interval=interval)
    return {**price, "product": product}


CORRECT_PRICES = [
    priced("price_pack", credit_amount="100"),
    priced("price_pro", credit_amount="1000", interval="month"),
]


def account(
    fake: FakeStripe,
    *,
    endpoints: list[dict[str, Any]] | None = None,
    prices: list[dict[str, Any]] | None = None,
    portals: list[dict[str, Any]] | None = None,
) -> None:
    """Answer the three reads the check makes, with a correct account unless told otherwise."""
    fake.answer(
        "GET", "/v1/webhook_endpoints", page("/v1/webhook_endpoints", endpoints or [endpoint()])
    )
    fake.answer(
        "GET", "/v1/prices", page("/v1/prices", CORRECT_PRICES if prices is None else prices)
    )
    fake.answer(
        "GET",
        "/v1/billing_portal/configurations",
        page("/v1/billing_portal/configurations", [portal()] if portals is None else portals),
    )


def guide_blocks() -> list[list[str]]:
    """The ``text`` code blocks of docs/going-live.md, as lists of lines."""
    text = GUIDE.read_text(encoding="utf-8")
    return [block.splitlines() for block in re.findall(r"^```text\n(.*?)^```$", text, re.M | re.S)]


def run() -> str:
    out = StringIO()
    call_command("stripe_check", stdout=out)
    return out.getvalue()


def run_failing() -> tuple[str, str]:
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("stripe_check", stdout=out)
    return out.getvalue(), str(raised.value)


@pytest.mark.django_db
def test_a_correct_account_passes_reading_only(fake):
    account(fake)

    output = run()

    assert output.splitlines() == [
        "ok    keys are test mode keys, as STRIPE_LIVE_MODE says",
        "ok    STRIPE_WEBHOOK_SECRET is set (whsec_...)",
        f"ok    webhook endpoint {WEBHOOK_URL} is enabled",
        f"ok    it subscribes to exactly the {len(HANDLED_EVENT_TYPES)} handled event types",
        "ok    2 active prices all carry credit_amount metadata",
        "ok    Billing Portal plan switching is off",
        "Stripe is ready: every check passed.",
    ]
    assert {sent.method for sent in fake.sent} == {"GET"}
    assert fake.sent[0].headers["Authorization"] == "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"
    assert not StripeProduct.objects.exists()  # it checks the catalog; it does not sync it
    # The guide shows this very run as the output of a correct setup.
    assert output.splitlines() in guide_blocks()


def test_the_guide_lists_exactly_the_event_types_the_endpoint_must_send():
    assert sorted(HANDLED_EVENT_TYPES) in [sorted(block) for block in guide_blocks()]


MISCONFIGURED = {
    "no-endpoint-for-site": (
        {"endpoints": [endpoint(url="https://old.example.com/stripe/webhook/")]},
        f"FAIL  no webhook endpoint for {WEBHOOK_URL}. Fix: add one in Developers > Webhooks",
    ),
    "endpoint-disabled": (
        {"endpoints": [endpoint(status="disabled")]},
        f"FAIL  the webhook endpoint for {WEBHOOK_URL} is disabled. Fix: enable it",
    ),
    "event-missing": (
        {"endpoints": [endpoint(enabled_events=list(HANDLED_EVENT_TYPES[1:]))]},
        f"FAIL  the webhook endpoint misses event types: {HANDLED_EVENT_TYPES[0]}. Fix: add them",
    ),
    "event-not-handled": (
        {"endpoints": [endpoint(enabled_events=[*HANDLED_EVENT_TYPES, "charge.refunded"])]},
        "FAIL  the webhook endpoint sends event types this project does not handle: "
        "charge.refunded. Fix: remove them",
    ),
    "endpoint-api-version": (
        {"endpoints": [endpoint(api_version="2024-06-20")]},
        f"FAIL  the webhook endpoint sends payloads of API version 2024-06-20, but this "
        f"project reads {API_VERSION}. Fix: add an endpoint with API version {API_VERSION}",
    ),
    "every-event": (
        {"endpoints": [endpoint(enabled_events=["*"])]},
        "FAIL  the webhook endpoint subscribes to every event type (*). Fix: select exactly",
    ),
    "price-without-credits": (
        {"prices": [CORRECT_PRICES[0], priced("price_team", credit_amount=None)]},
        "FAIL  price price_team (Price_Team) has no credit_amount metadata. Fix: add "
        "credit_amount (credits it grants) to the metadata of product prod_price_team",
    ),
    "no-prices": (
        {"prices": []},
        "FAIL  there is no active price. Fix: create the plans and credit packs",
    ),
    "portal-switches-plans": (
        {"portals": [portal(switching=True)]},
        "FAIL  the Billing Portal lets customers switch plans. Fix: turn off "
        "'Customers can switch plans'",
    ),
    "portal-never-saved": (
        {"portals": []},
        "FAIL  the Billing Portal has no saved configuration. Fix: open Settings > Billing",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("answers", "line"), list(MISCONFIGURED.values()), ids=list(MISCONFIGURED))
def test_each_misconfiguration_gives_its_line_with_its_fix_and_fails(fake, answers, line):
    account(fake, **answers)

    output, error = run_failing()

    failing = [text for text in output.splitlines() if text.startswith("FAIL")]
    assert len(failing) == 1, output
    assert failing[0].startswith(line)
    assert error == "1 finding(s): fix them and run stripe_check again."
    assert {sent.method for sent in fake.sent} == {"GET"}


@pytest.mark.django_db
@pytest.mark.parametrize("secret", ["", "whsec_dummy", "not-a-signing-secret-at-all-0123456789"])
def test_a_missing_or_malformed_signing_secret_is_a_finding(fake, settings, secret):
    settings.STRIPE_WEBHOOK_SECRET = secret
    account(fake)

    output, _ = run_failing()

    (failing,) = [text for text in output.splitlines() if text.startswith("FAIL")]
    assert failing.startswith("FAIL  STRIPE_WEBHOOK_SECRET ")
    assert "Fix: reveal the signing secret" in failing


@pytest.mark.django_db
def test_a_revoked_key_stops_the_check_with_one_line_and_writes_nothing(fake):
    fake.answer(
        "GET",
        "/v1/webhook_endpoints",
        {
            "error": {
                "type": "invalid_request_error",
                "message": "Expired API Key provided: sk_test_****p7dc",
                "code": "api_key_expired",
            }
        },
        status=401,
    )

    output, error = run_failing()

    assert output == ""
    assert error == (
        "Stripe refused STRIPE_SECRET_KEY (revoked, rolled or mistyped). Fix: copy the test "
        "mode secret key from Stripe's dashboard (Developers > API keys) into STRIPE_SECRET_KEY."
    )
    assert len(fake.sent) == 1  # not retried: a refused key stays refused
    assert not StripeProduct.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("live_mode", "secret_key", "public_key", "message"),
    [
        (
            False,
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "pk_test_TYooMQauvdEDq54NiTphI7jx",
            "STRIPE_SECRET_KEY is a live mode key but STRIPE_LIVE_MODE is off. Fix: use the "
            "test mode key (sk_test_ or rk_test_...), or set STRIPE_LIVE_MODE=True.",
        ),
        (
            True,
            "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "pk_live_TYooMQauvdEDq54NiTphI7jx",
            "STRIPE_SECRET_KEY is a test mode key but STRIPE_LIVE_MODE is on. Fix: use the "
            "live mode key (sk_live_ or rk_live_...), or set STRIPE_LIVE_MODE=False.",
        ),
    ],
    ids=["live-key-in-test-mode", "test-key-in-live-mode"],
)
def test_keys_for_the_wrong_mode_stop_the_check_before_any_request(
    fake, settings, live_mode, secret_key, public_key, message
):
    settings.STRIPE_LIVE_MODE = live_mode
    settings.STRIPE_SECRET_KEY = secret_key
    settings.STRIPE_PUBLIC_KEY = public_key
    account(fake)

    output, error = run_failing()

    assert output == ""
    assert error == message
    assert fake.sent == []  # the other mode's account is never read


def test_with_stripe_off_there_is_nothing_to_check(fake, settings):
    settings.STRIPE_ENABLED = False

    output, error = run_failing()

    assert output == ""
    assert error.startswith("STRIPE_ENABLED is off, so there is no Stripe account to check.")
    assert fake.sent == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "kind", "fix"),
    [
        (403, "invalid_request_error", "Fix: give the restricted key read access"),
        (500, "api_error", "Fix: check the network and STRIPE_SECRET_KEY, then retry."),
    ],
    ids=["restricted-key-lacks-access", "stripe-failing"],
)
def test_a_read_stripe_refuses_otherwise_stops_the_check_with_its_fix(fake, status, kind, fix):
    fake.answer(
        "GET",
        "/v1/webhook_endpoints",
        {"error": {"type": kind, "message": "Not allowed or not working"}},
        status=status,
    )

    output, error = run_failing()

    assert output == ""
    assert error.startswith("Stripe could not list the webhook endpoints: Not allowed")
    assert fix in error


# --------------------------------------------------------------------------- trial metadata


def with_trial(price_id: str, trial_days: str) -> dict[str, Any]:
    price = priced(price_id, credit_amount="1000", interval="month")
    price["product"]["metadata"]["trial_days"] = trial_days
    return price


@pytest.mark.django_db
def test_a_trial_length_the_sync_would_refuse_is_one_failing_line_with_its_fix(fake):
    account(fake, prices=[priced("price_pack", credit_amount="100"), with_trial("price_pro", "0")])

    output, _ = run_failing()

    [line] = [line for line in output.splitlines() if "trial_days" in line]
    assert line == (
        "FAIL  Stripe price price_pro (product prod_price_pro): metadata trial_days must be a "
        "whole number of days from 1 to 730, not '0'. Fix: correct it in Product catalog."
    )
    assert "ok    Billing Portal plan switching is off" in output.splitlines()  # it went on
    assert {sent.method for sent in fake.sent} == {"GET"}
    assert not StripeProduct.objects.exists()


@pytest.mark.django_db
def test_a_valid_trial_passes_the_check(fake):
    account(fake, prices=[priced("price_pack", credit_amount="100"), with_trial("price_pro", "14")])

    assert "ok    2 active prices all carry credit_amount metadata" in run().splitlines()
