"""The signed-in home in a real Chromium: where sign-in lands, the chart, and phone width."""

import os
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from common.testing.browser import log_in
from home.tests.test_home import _call
from services.models import Service
from stripe_manager.models import UserSubscription
from stripe_manager.tests.factories import make_catalog
from users.models import CustomUser
from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("HOME_SCREENSHOTS_DIR", "")


def _busy_account(fund: Any) -> CustomUser:
    user = make_user("busy@example.com", first_name="Dana")
    fund(user, "12500")
    catalog = make_catalog()
    UserSubscription.objects.create(
        user=user,
        stripe_subscription_id="sub_busy",
        price_id="price_pro",
        product=catalog["pro"],
        status="active",
        current_period_end=timezone.now() + timedelta(days=9),
    )
    for number, name in enumerate(["text_sentiment_analysis", "text_summarizer", "image_tools"]):
        Service.objects.create(
            name=name, description=f"What {name} does, in one line.", credit_cost=number + 1
        )
    services = list(Service.objects.all())
    for day in range(0, 30, 2):
        _call(user, services[day % 3], Decimal(day * 7 + 1), reference=f"b{day}", days_ago=day)
    return user


@pytest.mark.parametrize("width", [1280, 390])
def test_signing_in_lands_on_the_home_which_fits_the_screen(page, fund, width):
    _busy_account(fund)
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, "busy@example.com", PASSWORD)
    page.wait_for_url("**/home/")
    expect(page.get_by_role("heading", name="Welcome, Dana")).to_be_visible()
    chart = page.get_by_role("img", name="Credits used per day, last 30 days")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > width / 2
    expect(page.locator("#balance-available")).to_have_text("11,015")
    expect(page.locator("#plan-name")).to_have_text("Pro")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    credits_column = page.locator("#recent-calls th", has_text="Credits").bounding_box()
    assert credits_column["x"] + credits_column["width"] <= width  # not scrolled out of sight
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/home-{width}.png", full_page=True)
    page.console.assert_clean()
