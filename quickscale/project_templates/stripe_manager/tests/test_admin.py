"""Django admin: the catalog sync (action and button) and the refund action, through HTTP POSTs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages

from stripe_manager.gateway import Gateway, GatewayError, PriceInfo, RefundResult
from stripe_manager.models import Payment, Refund, StripeProduct
from stripe_manager.tests.factories import balance, deliver, purchase_completed
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/stripe_manager/stripeproduct/"
PAYMENTS = "/admin/stripe_manager/payment/"


class AdminFakeGateway(Gateway):
    """Answers the two calls the admin makes; records them. Anything else is a test bug."""

    prices: ClassVar[list[PriceInfo]] = []
    refunds: ClassVar[list[dict[str, Any]]] = []
    error: ClassVar[str] = ""

    def list_prices(self, *, product_id: str | None = None) -> list[PriceInfo]:
        if self.error:
            raise GatewayError(self.error)
        return list(self.prices)

    def create_refund(self, **kwargs: Any) -> RefundResult:
        if self.error:
            raise GatewayError(self.error)
        self.refunds.append(kwargs)
        return RefundResult(
            refund_id=f"re_admin_{len(self.refunds)}", status="succeeded", amount=kwargs["amount"]
        )

    def create_customer(self, **kwargs: Any) -> str:
        raise NotImplementedError

    def create_checkout_session(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def create_portal_session(self, **kwargs: Any) -> str:
        raise NotImplementedError

    def upgrade_subscription(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def schedule_downgrade(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def set_cancel_at_period_end(self, **kwargs: Any) -> None:
        raise NotImplementedError


@pytest.fixture(autouse=True)
def fake_gateway(settings):
    settings.STRIPE_GATEWAY = "stripe_manager.tests.test_admin.AdminFakeGateway"
    AdminFakeGateway.prices = [
        PriceInfo(
            price_id="price_pack",
            product_id="prod_pack",
            name="Credit pack",
            description="",
            unit_amount=1200,
            currency="usd",
            interval="none",
            credit_amount=Decimal("120"),
        ),
        PriceInfo(
            price_id="price_team",
            product_id="prod_team",
            name="Team",
            description="For teams",
            unit_amount=9900,
            currency="usd",
            interval="month",
            credit_amount=Decimal("5000"),
        ),
    ]
    AdminFakeGateway.refunds = []
    AdminFakeGateway.error = ""
    return AdminFakeGateway


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _run_action(client, url: str, action: str, pks: list[int]):
    return client.post(
        url,
        {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0"},
        follow=True,
    )


# --------------------------------------------------------------------------- catalog sync


def test_sync_action_pulls_the_catalog_and_deactivates_what_stripe_no_longer_lists(
    admin_client, catalog
):
    response = _run_action(admin_client, PRODUCTS, "sync_from_stripe", [catalog["pack"].pk])

    assert response.status_code == 200
    assert _messages(response) == [
        "2 prices synced, 2 deactivated."
    ]  # basic and pro; "retired" already was
    pack = StripeProduct.objects.get(stripe_price_id="price_pack")
    assert (pack.name, pack.price, pack.credit_amount, pack.active) == (
        "Credit pack",
        Decimal("12.00"),
        Decimal("120"),
        True,
    )
    assert StripeProduct.objects.get(stripe_price_id="price_team").interval == "month"
    assert set(
        StripeProduct.objects.filter(active=True).values_list("stripe_price_id", flat=True)
    ) == {
        "price_pack",
        "price_team",
    }


def test_sync_button_fills_an_empty_catalog(admin_client):
    page = admin_client.get(PRODUCTS)
    assert b"Sync from Stripe" in page.content

    response = admin_client.post(f"{PRODUCTS}sync/", follow=True)

    assert response.redirect_chain == [(PRODUCTS, 302)]
    assert _messages(response) == ["2 prices synced, 0 deactivated."]
    assert StripeProduct.objects.filter(active=True).count() == 2


def test_sync_button_needs_a_post(admin_client):
    assert admin_client.get(f"{PRODUCTS}sync/").status_code == 405
    assert StripeProduct.objects.count() == 0


def test_sync_failure_is_reported_and_changes_nothing(admin_client, catalog, fake_gateway):
    fake_gateway.error = "Stripe could not list prices: Invalid API Key provided"
    before = list(StripeProduct.objects.order_by("pk").values())

    response = admin_client.post(f"{PRODUCTS}sync/", follow=True)

    assert _messages(response) == ["Stripe could not list prices: Invalid API Key provided"]
    assert list(StripeProduct.objects.order_by("pk").values()) == before


def test_staff_who_may_only_view_products_cannot_sync(client, catalog):
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_stripeproduct"))
    client.force_login(viewer)

    assert b"Sync from Stripe" not in client.get(PRODUCTS).content
    assert client.post(f"{PRODUCTS}sync/").status_code == 403
    _run_action(client, PRODUCTS, "sync_from_stripe", [catalog["pack"].pk])
    assert StripeProduct.objects.filter(stripe_price_id="price_team").count() == 0


# --------------------------------------------------------------------------- refunds


@pytest.fixture
def paid(client, customer, catalog):
    """A paid purchase of 2 packs: 20.00 USD for 200 credits."""
    assert deliver(client, purchase_completed(customer, catalog["pack"], quantity=2)) == 200
    return Payment.objects.get(user=customer.user)


def test_refund_action_refunds_the_rest_and_takes_the_credits_back(
    admin_client, paid, user, fake_gateway
):
    assert balance(user)[2] == Decimal("200")

    response = _run_action(admin_client, PAYMENTS, "refund_in_full", [paid.pk])

    assert _messages(response) == [
        f"{paid.receipt_number}: refunded $20.00, 200 credits taken back."
    ]
    [call] = fake_gateway.refunds
    refund = Refund.objects.get(payment=paid)
    assert call["payment_intent_id"] == paid.stripe_payment_intent_id
    assert call["amount"] == 2000
    assert call["idempotency_key"] == refund.idempotency_key
    assert refund.status == Refund.Status.SUCCEEDED
    paid.refresh_from_db()
    assert (paid.status, paid.amount_refunded) == (Payment.Status.REFUNDED, Decimal("20.00"))
    assert balance(user)[2] == Decimal("0")


def test_refund_action_twice_refunds_once(admin_client, paid, user, fake_gateway):
    _run_action(admin_client, PAYMENTS, "refund_in_full", [paid.pk])

    response = _run_action(admin_client, PAYMENTS, "refund_in_full", [paid.pk])

    [message] = _messages(response)
    assert message.startswith(f"{paid.receipt_number}: Payment {paid.receipt_number} is refunded")
    assert len(fake_gateway.refunds) == 1
    assert Refund.objects.filter(payment=paid).count() == 1


def test_refund_action_reports_a_gateway_failure_and_keeps_the_credits(
    admin_client, paid, user, fake_gateway
):
    fake_gateway.error = "Stripe could not refund the payment: Charge disputed"

    response = _run_action(admin_client, PAYMENTS, "refund_in_full", [paid.pk])

    assert _messages(response) == [
        f"{paid.receipt_number}: Stripe could not refund the payment: Charge disputed"
    ]
    refund = Refund.objects.get(payment=paid)
    assert (refund.status, refund.error) == (Refund.Status.FAILED, fake_gateway.error)
    paid.refresh_from_db()
    assert (paid.status, paid.amount_refunded) == (Payment.Status.SUCCEEDED, Decimal("0"))
    assert balance(user)[2] == Decimal("200")


def test_staff_who_may_only_view_payments_cannot_refund(client, paid, user, fake_gateway):
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(viewer)

    assert b"refund_in_full" not in client.get(PAYMENTS).content
    _run_action(client, PAYMENTS, "refund_in_full", [paid.pk])

    assert fake_gateway.refunds == []
    assert not Refund.objects.exists()
    assert balance(user)[2] == Decimal("200")


# --------------------------------------------------------------------------- stored events

EVENTS = "/admin/stripe_manager/receivedstripeevent/"


def test_apply_now_makes_waiting_and_given_up_events_due_at_once(admin_client, customer, catalog):
    from datetime import timedelta

    from django.utils import timezone

    from stripe_manager import webhook_queue
    from stripe_manager.models import ReceivedStripeEvent
    from stripe_manager.tests.factories import apply_received_events, event_state, refund_event

    waiting = refund_event(customer, "pi_cs_admin", "re_admin_wait", 400)
    given_up = refund_event(customer, "pi_cs_admin", "re_admin_gone", 600)
    assert deliver(admin_client, waiting) == 200
    assert deliver(admin_client, given_up) == 200
    ReceivedStripeEvent.objects.filter(event_id=given_up["id"]).update(
        state="failed", attempts=webhook_queue.MAX_ATTEMPTS
    )
    later = timezone.now() + timedelta(minutes=30)
    ReceivedStripeEvent.objects.filter(event_id=waiting["id"]).update(next_attempt_at=later)
    assert deliver(
        admin_client, purchase_completed(customer, catalog["pack"], session_id="cs_admin")
    )
    assert apply_received_events() == 0  # neither is due

    rows = ReceivedStripeEvent.objects.filter(event_id__in=[waiting["id"], given_up["id"]])
    response = _run_action(
        admin_client, EVENTS, "apply_now", list(rows.values_list("pk", flat=True))
    )

    assert "2 events due now." in _messages(response)
    assert apply_received_events() == 2
    assert event_state(waiting) == ("processed", 2)
    assert event_state(given_up) == ("processed", 1)  # started over
    assert balance(customer.user)[2] == 0  # both refunds took their credits back
