"""Every page of the project under its Content-Security-Policy, in a real Chromium.

The page fixture's console watch (common/testing/browser.py) is the one CSP
checker: Chromium enforces the policy the site sends and reports each inline
script, style or handler it blocks.
"""

import pytest

from api.services import api_key_create
from common.testing.browser import log_in
from users.tests.factories import PASSWORD, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_services"),
]

PAGES_ANONYMOUS = [
    "/",
    "/about/",
    "/contact/",
    "/pricing/",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
]
PAGES_SIGNED_IN = [
    "/",
    "/accounts/profile/",
    "/accounts/settings/",
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/delete/",
    "/credits/",
    "/billing/",
    "/services/",
    "/services/usage/",
    "/services/jobs/",
    "/services/text_summarizer/",
    "/services/batch_sentiment_analysis/",
    "/services/image_metadata_extractor/",
    "/api-keys/",
    "/accounts/logout/",
]


def test_no_page_reports_a_csp_violation_or_a_console_error(page):
    page.goto("/no-such-page/")  # the styled 404 (its own status is the one console error)
    page.get_by_role("heading", name="Page not found").wait_for()
    page.console.errors.clear()
    for path in PAGES_ANONYMOUS:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    user = make_user("csp@example.com")
    api_key_create(user, name="listed")  # the keys page shows a key with its revoke form
    log_in(page, "csp@example.com", PASSWORD)
    for path in PAGES_SIGNED_IN:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    # Alpine ran (the CSP build needs no eval): the user menu opens on click.
    page.goto("/")
    page.get_by_role("link", name="csp@example.com").click()
    page.get_by_role("link", name="Account settings").wait_for(state="visible")
    page.console.assert_clean()
