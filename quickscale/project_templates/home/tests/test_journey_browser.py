"""A new customer's first session, end to end in a real Chromium, as one journey.

Sign up, confirm the email, land on the home, turn on an authenticator app,
sign out and back in with a code, buy a credit pack, subscribe then upgrade
with its preview, run a service, copy its curl snippet, and see today's bar
of the home's chart grow. Only the process edges are stand-ins: the offline
Stripe simulator and the test mail outbox (the worker's email thread is played here).
axe checks the pages only this flow shows (common/testing/axe.py).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from django.core.management import call_command
from playwright.sync_api import expect

from common.formatting import format_money
from common.testing.axe import assert_accessible
from common.testing.browser import log_in
from services.configuration import ensure_service_rows
from stripe_manager.models import Payment, UserSubscription
from stripe_manager.tests.test_browser import credits_in_navbar, pay_in_simulated_checkout
from users.tests.test_browser import link_in_last_mail
from users.tests.test_mfa import totp_code
from users.tests.test_passkeys_browser import log_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "newcomer@example.com"
PASSWORD = "Newcomer-pass-2026!"


def todays_bar(page: Any) -> Any:
    """The chart's last bar: today (the chart runs from 29 days ago to today)."""
    return page.get_by_role("img", name=re.compile("Credits used per day")).locator("rect").last


def a_fresh_code(secret: str) -> str:
    """The app's current code, with time to type it before the 30-second period ends."""
    if mfa_settings.TOTP_PERIOD - time.time() % mfa_settings.TOTP_PERIOD < 3:
        time.sleep(3)
    return totp_code(secret)


def test_a_new_customer_signs_up_secures_pays_upgrades_and_uses_a_service(page, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    call_command("seed_demo_catalog", stdout=None)
    ensure_service_rows()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    # Sign up, confirm the address from the email, sign in: the home is where one lands.
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill(EMAIL)
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Verify your email address")).to_be_visible()
    assert_accessible(page)  # pages of this flow only, which the page inventory leaves out
    page.goto(link_in_last_mail("/accounts/confirm-email/"))
    assert_accessible(page)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text(f"You have confirmed {EMAIL}.")).to_be_visible()
    log_in(page, EMAIL, PASSWORD)
    page.wait_for_url("**/home/")
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    expect(page.locator("#step-confirm-email")).to_have_count(0)  # done, so gone
    expect(todays_bar(page)).to_have_class("bar-empty")

    # Turn on an authenticator app: the key it would scan, then the code it shows.
    page.goto("/accounts/2fa/")
    page.get_by_role("link", name="Set up an authenticator app").click()
    # allauth asks for the password again before two-factor settings change.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    secret = page.get_by_label("Or type this key").input_value()
    page.get_by_label("Authenticator code").fill(a_fresh_code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Recovery codes")).to_be_visible()
    assert_accessible(page)
    assert Authenticator.objects.filter(user__email=EMAIL, type=Authenticator.Type.TOTP).exists()

    # Sign out; signing back in takes the password and then a code.
    log_out(page, EMAIL)
    log_in(page, EMAIL, PASSWORD)
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Code").fill(a_fresh_code(secret))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home/")
    credits_in_navbar(page, 0)

    # Buy a pack of 100 credits in the (simulated) Stripe checkout.
    page.goto("/pricing/")
    page.locator("#pack-price_sim_credits_100").get_by_role("button", name="Buy").click()
    pay_in_simulated_checkout(page, "100 credits")
    credits_in_navbar(page, 100)

    # Subscribe to Basic, then upgrade to Pro: the preview's charge is what is paid.
    page.goto("/pricing/")
    page.locator("#plan-price_sim_basic_monthly").get_by_role("button", name="Subscribe").click()
    pay_in_simulated_checkout(page, "Basic")
    page.goto("/pricing/")
    page.locator("#plan-price_sim_pro_monthly").get_by_role("button", name="Upgrade").click()
    expect(page.get_by_role("heading", name="Upgrade to Pro")).to_be_visible()
    charged = page.locator("#preview-amount").inner_text().strip()
    page.get_by_role("button", name=re.compile(rf"^Pay {re.escape(charged)} and upgrade$")).click()
    expect(page.get_by_text("Plan upgraded.")).to_be_visible()
    assert UserSubscription.objects.filter(user__email=EMAIL, product__name="Pro").exists()
    upgrade = Payment.objects.filter(user__email=EMAIL, product__name="Pro").latest("created_at")
    assert format_money(upgrade.amount, "usd") == charged
    credits_in_navbar(page, 2600)

    # Run a service; its curl snippet goes to the clipboard.
    page.goto("/services/text_sentiment_analysis/")
    page.get_by_label("Text").fill("What a wonderful, delightful day.")
    page.locator("#service-panel button[type=submit]").click()
    expect(page.locator("#sentiment-label")).to_have_text("Positive")
    credits_in_navbar(page, 2599)
    page.locator("#copy-curl").click()
    expect(page.locator("#copy-curl")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("curl -X POST ")
    assert "/api/services/text_sentiment_analysis/run" in copied

    # Back home, today's bar shows the credit just spent.
    page.goto("/home/")
    bar = todays_bar(page)
    expect(bar).to_have_class("bar")
    expect(bar.locator("title")).to_have_text(re.compile(r": 1 credits?$"))
    assert float(bar.get_attribute("height")) > 1
    page.console.assert_clean()
