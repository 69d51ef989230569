"""The money path in a real Chromium against the offline simulator.

Fixtures: common/testing/browser.py. The simulator delivers signed events to
/stripe/webhook/ after its own transaction commits, so the test database runs
real transactions here.
"""

import re
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from common.formatting import format_money
from stripe_manager.models import Payment
from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def credits_in_navbar(page: Any, amount: int) -> None:
    expect(page.locator("#navbar-credits")).to_have_text(re.compile(rf"Credits\s+{amount:,}\s*$"))


def pay_in_simulated_checkout(page: Any, item: str) -> None:
    expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    expect(page.get_by_text(item)).to_be_visible()
    page.get_by_role("button", name="Pay (test card)").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    # The webhook lands; the page polls until it shows what was bought.
    expect(page.locator("#checkout-status")).to_contain_text(
        re.compile(rf"You (bought|subscribed to) .*{re.escape(item)}")
    )


def test_buy_credits_subscribe_upgrade_and_read_the_receipt(page):
    call_command("seed_demo_catalog", stdout=None)
    user = make_user(email="buyer@example.com")
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    credits_in_navbar(page, 0)

    # Buy two credit packs.
    page.goto("/pricing/")
    pack = page.locator("#pack-price_sim_credits_100")
    pack.get_by_label("Quantity").fill("2")
    pack.get_by_role("button", name="Buy").click()
    pay_in_simulated_checkout(page, "100 credits")
    credits_in_navbar(page, 200)

    # Subscribe to the basic plan: its credits come on top.
    page.goto("/pricing/")
    page.locator("#plan-price_sim_basic_monthly").get_by_role("button", name="Subscribe").click()
    pay_in_simulated_checkout(page, "Basic")
    page.goto("/pricing/")
    expect(page.locator("#current-plan")).to_contain_text("Basic")
    credits_in_navbar(page, 700)

    # Upgrade: a preview of the prorated charge, then confirm; Pro's credits for this
    # period, Basic's left-over become pay-as-you-go.
    page.locator("#plan-price_sim_pro_monthly").get_by_role("button", name="Upgrade").click()
    expect(page.get_by_role("heading", name="Upgrade to Pro")).to_be_visible()
    charged = page.locator("#preview-amount").inner_text().strip()
    expect(page.locator("#preview-credits")).to_contain_text("become pay-as-you-go")
    page.get_by_role("button", name=re.compile(r"^Pay .* and upgrade$")).click()
    expect(page.get_by_text("Plan upgraded.")).to_be_visible()
    page.goto("/pricing/")
    expect(page.locator("#current-plan")).to_contain_text("Pro")
    expect(page.locator("#plan-price_sim_pro_monthly")).to_contain_text("Current plan")
    credits_in_navbar(page, 2700)

    # The billing history links to a printable receipt of each payment.
    upgrade = Payment.objects.filter(user=user, product__name="Pro").latest("created_at")
    assert format_money(upgrade.amount, "usd") == charged
    page.goto("/billing/")
    page.get_by_role("link", name=upgrade.receipt_number).click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    receipt = page.locator("table")
    expect(receipt).to_contain_text(upgrade.receipt_number)
    expect(receipt).to_contain_text(format_money(upgrade.amount, "usd"))
    expect(receipt).to_contain_text("Pro")
