"""A service page in a real Chromium (fixtures: common/testing/browser.py).

htmx posts the form and swaps the panel in place; the navbar balance comes with
it, out of band.
"""

from typing import Any

import pytest
from playwright.sync_api import expect

from credits import ledger
from services.configuration import ensure_service_rows
from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_paid_run_shows_its_result_and_the_new_balance_without_a_page_load(page: Any):
    ensure_service_rows()
    user = make_user("runner@example.com")
    ledger.grant(user, 5, source="admin", reference="browser-run")
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("runner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#navbar-credits")).to_contain_text("5.00")

    page.goto("/services/text_sentiment_analysis/")
    page.evaluate("window.sameDocument = true")  # gone after any full page load
    page.get_by_label("Text").fill("What a wonderful, delightful day.")
    page.get_by_role("button", name="Run (1.00 credits)").click()

    expect(page.locator("#service-result")).to_contain_text("positive")
    expect(page.locator("#navbar-credits")).to_contain_text("4.00")
    assert ledger.balance(user).total == 4

    page.get_by_label("Text").fill("   ")  # passes the browser's check, not the service's
    page.get_by_role("button", name="Run (1.00 credits)").click()
    expect(page.get_by_text("The text is empty.")).to_be_visible()
    expect(page.locator("#navbar-credits")).to_contain_text("4.00")
    assert ledger.balance(user).total == 4
    assert page.evaluate("window.sameDocument") is True
