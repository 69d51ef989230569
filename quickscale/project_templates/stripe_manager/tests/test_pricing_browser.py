"""The pricing page in a real Chromium: the period switch, phones, a signed-out pack choice."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PACK = "#pack-price_sim_credits_100"


def width_fits(page: Any) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= page.viewport_size["width"], scroll


@pytest.mark.parametrize("width", [1280, 390])
def test_the_switch_shows_one_period_and_the_page_fits(page, width):
    call_command("seed_demo_catalog", stdout=None)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/pricing/")
    width_fits(page)

    expect(page.locator("#plan-price_sim_pro_monthly")).to_be_visible()
    expect(page.locator("#plan-price_sim_pro_yearly")).to_be_hidden()
    expect(page.locator("#period-monthly")).to_have_attribute("aria-pressed", "true")

    page.get_by_role("button", name="Yearly").click()
    expect(page.locator("#plan-price_sim_pro_yearly")).to_be_visible()
    expect(page.locator("#plan-price_sim_pro_monthly")).to_be_hidden()
    expect(page.locator("#plan-price_sim_basic_monthly")).to_be_visible()  # monthly only
    expect(page.locator("#period-yearly")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#period-yearly")).to_have_class(re.compile(r"\bis-primary\b"))
    expect(page.locator("#period-monthly")).not_to_have_class(re.compile(r"\bis-primary\b"))
    width_fits(page)
    page.console.assert_clean()


def test_a_signed_out_visitor_keeps_the_pack_quantity_through_logging_in(page):
    call_command("seed_demo_catalog", stdout=None)
    user = make_user(email="later@example.com")
    page.goto("/pricing/")
    pack = page.locator(PACK)
    pack.get_by_label("Quantity").fill("4")
    pack.get_by_role("button", name="Sign up to buy").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/\?next="))

    # An existing account logs in instead; the page it returns to keeps the choice.
    next_url = page.evaluate("new URL(location.href).searchParams.get('next')")
    page.goto(f"/accounts/login/?next={quote(next_url)}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(PACK).get_by_label("Quantity")).to_have_value("4")
    expect(page.locator(PACK).get_by_role("button", name="Buy")).to_be_visible()
