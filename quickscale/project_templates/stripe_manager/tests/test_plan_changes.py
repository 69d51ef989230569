"""Plan changes you can trust: a preview, a signed confirmation, and the charge it promised.

Against the offline simulator end to end: the pages, the services, the
simulator's proration and the webhooks it delivers.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from common.formatting import format_money
from stripe_manager import plan_changes
from stripe_manager.gateway import GatewayError
from stripe_manager.models import Payment, SimulatedObject, StripeProduct, UserSubscription
from stripe_manager.simulator.gateway import SimulatorGateway
from stripe_manager.tests.factories import balance
from stripe_manager.tests.plan_steps import confirmation

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


@pytest.fixture
def demo(db):
    call_command("seed_demo_catalog", stdout=None)
    return {p.name: p for p in StripeProduct.objects.all()}


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def pay(client: Any, price_id: str, capture: Any, quantity: int = 1) -> str:
    """Check out ``price_id`` in the simulator and pay; returns the success page URL."""
    response = client.post("/billing/checkout/", {"price_id": price_id, "quantity": str(quantity)})
    with capture(execute=True):
        paid = client.post(response["Location"], {"action": "pay"})
    return str(paid["Location"])


class _Clock:
    """Stands in for the ``time`` module in the simulator: a clock that can move."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr("stripe_manager.simulator.gateway.time", fake)
    return fake


def sim_charges() -> list[int]:
    return sorted(int(row.data["amount"]) for row in SimulatedObject.objects.filter(kind="charge"))


def on_basic(client: Any, capture: Any) -> UserSubscription:
    pay(client, "price_sim_basic_monthly", capture)
    return UserSubscription.objects.get()


def test_the_upgrade_charges_exactly_the_previewed_amount_though_time_moved_on(
    signed_in, user, demo, capture, clock
):
    subscription = on_basic(signed_in, capture)
    assert subscription.current_period_start is not None
    clock.now = subscription.current_period_start.timestamp() + 10 * DAY

    preview = signed_in.get("/billing/plan/change/", {"price_id": "price_sim_pro_monthly"})
    page = preview.content.decode()
    assert preview.status_code == 200
    # Pro ($45) for 20 of 30 days, less Basic's ($15) unused 20 days: $20.00.
    assert format_money(Decimal("20.00"), "usd") in page
    assert "500 credits become pay-as-you-go" in page
    assert "Pro's 2,000 credits" in page

    # The user reads the page for five days of simulated time; the charge stays as previewed.
    clock.now += 5 * DAY
    with capture(execute=True):
        response = signed_in.post("/billing/plan/change/", {"confirmation": confirmation(page)})
    assert response.status_code == 303
    assert response["Location"] == "/billing/"
    upgrade = Payment.objects.filter(user=user, product__name="Pro").get()
    assert upgrade.amount == Decimal("20.00")
    assert sim_charges() == [1500, 2000]
    subscription.refresh_from_db()
    assert subscription.price_id == "price_sim_pro_monthly"
    assert balance(user) == (2000, 500, 2500)


def test_a_tampered_confirmation_changes_nothing(signed_in, user, demo, capture):
    on_basic(signed_in, capture)
    page = signed_in.get("/billing/plan/change/", {"price_id": "price_sim_pro_monthly"})
    token = confirmation(page.content.decode())
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")

    with capture(execute=True):
        response = signed_in.post("/billing/plan/change/", {"confirmation": forged}, follow=True)

    assert "That confirmation is not valid, so nothing was changed" in response.content.decode()
    assert UserSubscription.objects.get().price_id == "price_sim_basic_monthly"
    assert sim_charges() == [1500]
    assert balance(user) == (500, 0, 500)


def test_an_expired_confirmation_changes_nothing(signed_in, user, demo, capture, monkeypatch):
    on_basic(signed_in, capture)
    page = signed_in.get("/billing/plan/change/", {"price_id": "price_sim_pro_monthly"})
    monkeypatch.setattr(plan_changes, "CONFIRM_MAX_AGE_SECONDS", -1)

    with capture(execute=True):
        response = signed_in.post(
            "/billing/plan/change/",
            {"confirmation": confirmation(page.content.decode())},
            follow=True,
        )

    assert "That preview is more than 15 minutes old" in response.content.decode()
    assert UserSubscription.objects.get().price_id == "price_sim_basic_monthly"
    assert sim_charges() == [1500]


def test_a_confirmation_is_for_its_own_user_plan_and_action(
    client, user, other_user, demo, capture
):
    client.force_login(other_user)
    on_basic(client, capture)
    theirs = confirmation(
        client.get("/billing/plan/change/", {"price_id": "price_sim_pro_monthly"}).content.decode()
    )
    client.force_login(user)
    pay(client, "price_sim_basic_monthly", capture)
    cancel_token = confirmation(client.get("/billing/plan/cancel/").content.decode())

    with capture(execute=True):
        client.post("/billing/plan/change/", {"confirmation": theirs})
        client.post("/billing/plan/change/", {"confirmation": cancel_token})
        client.post("/billing/plan/change/", {"confirmation": ""})

    assert sorted(UserSubscription.objects.values_list("price_id", flat=True)) == [
        "price_sim_basic_monthly",
        "price_sim_basic_monthly",
    ]
    assert sim_charges() == [1500, 1500]


def test_a_confirmation_counts_once_even_before_the_webhook_lands(signed_in, user, demo, capture):
    on_basic(signed_in, capture)
    url = "/billing/plan/change/"
    page = signed_in.get(url, {"price_id": "price_sim_pro_monthly"}).content.decode()
    token = confirmation(page)
    # The webhooks run when the block ends: the second click comes before they land.
    with capture(execute=True):
        signed_in.post(url, {"confirmation": token})
        again = signed_in.post(url, {"confirmation": token}, follow=True)

    assert "That change was already confirmed" in again.content.decode()
    assert sim_charges() == [1500, 3000]
    assert Payment.objects.filter(product__name="Pro").count() == 1


def test_a_confirmation_is_refused_once_the_plan_changed_since_the_preview(
    signed_in, user, demo, capture
):
    on_basic(signed_in, capture)
    url = "/billing/plan/change/"
    stale = confirmation(signed_in.get(url, {"price_id": "price_sim_pro_monthly"}).content.decode())
    fresh = confirmation(signed_in.get(url, {"price_id": "price_sim_pro_monthly"}).content.decode())
    with capture(execute=True):
        signed_in.post(url, {"confirmation": fresh})
    with capture(execute=True):
        response = signed_in.post(url, {"confirmation": stale}, follow=True)

    assert "Your plan changed since that preview" in response.content.decode()
    assert Payment.objects.filter(product__name="Pro").count() == 1


def test_the_downgrade_preview_says_period_end_and_charges_nothing(signed_in, user, demo, capture):
    pay(signed_in, "price_sim_pro_monthly", capture)
    subscription = UserSubscription.objects.get()

    page = signed_in.get("/billing/plan/change/", {"price_id": "price_sim_basic_monthly"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "At the end of this period" in html
    assert subscription.current_period_end is not None
    assert subscription.current_period_end.strftime("%Y-%m-%d") in html
    assert format_money(0, "usd") in html
    assert UserSubscription.objects.get().scheduled_price_id == ""

    with capture(execute=True):
        signed_in.post("/billing/plan/change/", {"confirmation": confirmation(html)})
    subscription.refresh_from_db()
    assert subscription.price_id == "price_sim_pro_monthly"
    assert subscription.scheduled_price_id == "price_sim_basic_monthly"
    assert sim_charges() == [4500]


def test_cancel_needs_its_confirmation(signed_in, user, demo, capture):
    subscription = on_basic(signed_in, capture)

    with capture(execute=True):
        unconfirmed = signed_in.post("/billing/plan/cancel/", follow=True)
    assert "Confirm the cancellation" in unconfirmed.content.decode()
    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end

    page = signed_in.get("/billing/plan/cancel/")
    html = page.content.decode()
    assert "Nothing is charged or refunded" in html
    assert "500 credits" in html
    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end  # looking changes nothing

    with capture(execute=True):
        signed_in.post("/billing/plan/cancel/", {"confirmation": confirmation(html)})
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end
    assert balance(user) == (500, 0, 500)  # kept until the period ends


def test_plan_pages_link_to_the_previews(signed_in, demo, capture):
    on_basic(signed_in, capture)
    pricing = signed_in.get("/pricing/").content.decode()
    assert 'action="/billing/plan/change/"' in pricing
    assert 'method="get" action="/billing/plan/change/"' in pricing
    billing = signed_in.get("/billing/").content.decode()
    assert 'href="/billing/plan/cancel/"' in billing


def test_the_success_partial_polls_while_pending_then_shows_the_purchase(
    signed_in, user, demo, capture
):
    response = signed_in.post(
        "/billing/checkout/", {"price_id": "price_sim_credits_100", "quantity": "2"}
    )
    session_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    status_url = f"/credits/success/?session_id={session_id}"

    pending = signed_in.get(status_url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in pending  # htmx gets the status part only
    assert "waiting for Stripe to confirm" in pending
    assert 'hx-trigger="every 1500ms"' in pending
    assert f'hx-get="{status_url}"' in pending

    with capture(execute=True):
        signed_in.post(response["Location"], {"action": "pay"})

    done = signed_in.get(status_url, headers={"HX-Request": "true"}).content.decode()
    assert "You bought" in done and "2 x" in done
    assert format_money(Decimal("20.00"), "usd") in done
    assert "Your balance is now <strong>200 credits</strong>" in done
    assert "hx-trigger" not in done  # polling stops
    page = signed_in.get(f"/credits/success/?session_id={session_id}").content.decode()
    assert "You bought" in page


def test_the_success_partial_shows_no_one_elses_purchase(client, user, other_user, demo, capture):
    client.force_login(other_user)
    response = client.post("/billing/checkout/", {"price_id": "price_sim_credits_100"})
    session_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    with capture(execute=True):
        client.post(response["Location"], {"action": "pay"})

    client.force_login(user)
    page = client.get(f"/credits/success/?session_id={session_id}").content.decode()
    assert "You bought" not in page
    assert "waiting for Stripe" in page


def test_the_success_page_shows_a_new_plan_once_its_invoice_is_paid(signed_in, user, demo, capture):
    success = pay(signed_in, "price_sim_basic_monthly", capture)
    assert success.endswith("&kind=plan")
    page = signed_in.get(success).content.decode()
    assert "You subscribed to <strong>Basic" in page
    assert "adding 500 credits" in page
    assert "Your balance is now <strong>500 credits</strong>" in page


def test_the_success_page_of_a_trial_says_it_started_without_a_payment(
    signed_in, user, demo, capture
):
    StripeProduct.objects.filter(stripe_price_id="price_sim_basic_monthly").update(
        trial_days=7, trial_credit_amount=50
    )
    success = pay(signed_in, "price_sim_basic_monthly", capture)
    page = signed_in.get(success).content.decode()
    assert not Payment.objects.exists()
    assert "Your free trial of <strong>Basic</strong> has started" in page
    assert "Your balance is now <strong>50 credits</strong>" in page
    assert "hx-trigger" not in page


def test_a_pending_pack_is_not_mistaken_for_a_recent_plan_payment(signed_in, user, demo, capture):
    on_basic(signed_in, capture)
    response = signed_in.post("/billing/checkout/", {"price_id": "price_sim_credits_100"})
    session_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]

    page = signed_in.get(f"/credits/success/?session_id={session_id}").content.decode()

    assert "waiting for Stripe" in page
    assert "You bought" not in page


def test_a_change_stripe_refused_can_be_confirmed_again(
    signed_in, user, demo, capture, monkeypatch
):
    on_basic(signed_in, capture)
    url = "/billing/plan/change/"
    token = confirmation(signed_in.get(url, {"price_id": "price_sim_pro_monthly"}).content.decode())

    def refuse(self: Any, **kwargs: Any) -> None:
        raise GatewayError("Stripe could not change the plan: try again.")

    with monkeypatch.context() as patched:
        patched.setattr(SimulatorGateway, "upgrade_subscription", refuse)
        refused = signed_in.post(url, {"confirmation": token}, follow=True)
    assert "Stripe could not change the plan" in refused.content.decode()
    assert UserSubscription.objects.get().price_id == "price_sim_basic_monthly"

    with capture(execute=True):
        signed_in.post(url, {"confirmation": token})
    assert UserSubscription.objects.get().price_id == "price_sim_pro_monthly"
    assert sim_charges() == [1500, 3000]


def test_previews_need_a_plan_and_a_plan_to_change_to(signed_in, user, demo, capture):
    no_plan = signed_in.get("/billing/plan/change/", {"price_id": "price_sim_pro_monthly"})
    assert no_plan.status_code == 303
    assert signed_in.get("/billing/plan/cancel/").status_code == 303
    on_basic(signed_in, capture)
    for price_id in ["price_sim_basic_monthly", "price_sim_credits_100", "price_nope", ""]:
        response = signed_in.get("/billing/plan/change/", {"price_id": price_id}, follow=True)
        assert 'name="confirmation"' not in response.content.decode()
    assert sim_charges() == [1500]
