"""The interactive API docs in a real Chromium, under the site's CSP (common/testing/browser.py)."""

import pytest

from api.services import api_key_create
from users.tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_render_and_try_a_call_with_no_csp_violation(page, fund):
    user = make_user()
    fund(user, 42)
    key = api_key_create(user, name="docs")[1]

    page.goto("/api/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() == 9
    assert page.locator(".info .title").inner_text().startswith("QuickScale API")

    # Authorize with the key, then run GET /api/credits/balance/ from the page (connect-src).
    page.get_by_role("button", name="Authorize").first.click()
    page.locator("#auth-bearer-value").fill(key)
    page.get_by_role("button", name="Apply credentials").click()
    page.locator(".modal-ux .btn-done").click()
    balance = page.locator(".opblock", has_text="/api/credits/balance/")
    balance.locator(".opblock-summary").click()
    balance.get_by_role("button", name="Try it out").click()
    balance.get_by_role("button", name="Execute").click()
    answer = balance.locator(".live-responses-table .response .response-col_status").first
    answer.wait_for()
    assert answer.inner_text().strip() == "200"
    assert '"total": "42.00"' in balance.locator(".live-responses-table").inner_text()
    page.console.assert_clean()
