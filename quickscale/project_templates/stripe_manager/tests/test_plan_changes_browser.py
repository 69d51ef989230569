"""Plan change previews and the checkout success page in a real Chromium (simulator)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from common.testing.browser import log_in
from stripe_manager.gateway import get_gateway
from stripe_manager.models import SimulatedObject, UserSubscription
from stripe_manager.simulator.gateway import SimulatorGateway
from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def width_fits(page: Any) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= page.viewport_size["width"], scroll


def test_the_success_page_polls_until_the_payment_lands_then_stops(page):
    call_command("seed_demo_catalog", stdout=None)
    user = make_user(email="poll@example.com")
    log_in(page, user.email, PASSWORD)
    page.goto("/pricing/")
    page.locator("#pack-price_sim_credits_100").get_by_role("button", name="Buy").click()
    expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    session_id = SimulatedObject.objects.get(kind="checkout_session").object_id

    # Stripe has not confirmed yet: the page waits and keeps asking.
    page.goto(f"/credits/success/?session_id={session_id}")
    expect(page.locator("#checkout-status")).to_contain_text("waiting for Stripe")
    gateway = get_gateway()
    assert isinstance(gateway, SimulatorGateway)
    gateway.complete_checkout(session_id)

    status = page.locator("#checkout-status")
    expect(status).to_contain_text(re.compile(r"You bought 1 x .*100 credits"))
    expect(status).to_contain_text("Your balance is now 100 credits")
    expect(status).not_to_have_attribute("hx-trigger", re.compile(".*"))
    page.console.assert_clean()


def test_upgrade_downgrade_and_cancel_previews_fit_a_phone(page):
    call_command("seed_demo_catalog", stdout=None)
    user = make_user(email="plans@example.com")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, user.email, PASSWORD)
    page.goto("/pricing/")
    page.locator("#plan-price_sim_basic_monthly").get_by_role("button", name="Subscribe").click()
    page.get_by_role("button", name="Pay (test card)").click()
    expect(page.locator("#checkout-status")).to_contain_text("You subscribed to Basic")
    width_fits(page)

    page.goto("/pricing/")
    page.locator("#plan-price_sim_pro_monthly").get_by_role("button", name="Upgrade").click()
    expect(page.locator("#preview-amount")).to_contain_text("$30.00")
    width_fits(page)
    page.get_by_role("link", name="Back to plans").click()

    page.goto("/billing/")
    page.get_by_role("link", name="Cancel plan").click()
    expect(page.get_by_role("heading", name="Cancel your plan")).to_be_visible()
    width_fits(page)
    page.get_by_role("button", name="Cancel at period end").click()
    expect(page.get_by_text("Your plan ends at the end of the current period.")).to_be_visible()
    assert UserSubscription.objects.get().cancel_at_period_end
    page.console.assert_clean()
