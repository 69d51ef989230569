"""The last-attempt warning as a person sees it on the sign-in page, in both schemes."""

from typing import Any

import pytest
from playwright.sync_api import expect

from common.testing.browser import log_in
from users.tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_four_wrong_passwords_show_the_last_attempt_warning(page: Any, settings: Any, scheme: str):
    settings.ACCOUNT_LOCKOUT_ATTEMPTS = 5
    settings.ACCOUNT_LOCKOUT_MINUTES = 15
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "20/m/ip,10/900s/key"}
    make_user("typo@example.com")
    page.emulate_media(color_scheme=scheme)

    for _ in range(3):
        log_in(page, "typo@example.com", "not-my-password")
    expect(page.locator("#attempts-left")).to_have_text(
        "2 attempts left before your account is locked for 15 minutes."
    )
    log_in(page, "typo@example.com", "not-my-password")

    warning = page.get_by_role("alert").filter(has_text="1 attempt left")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("before your account is locked for 15 minutes")
    warning.get_by_role("link", name="Reset it").click()
    expect(page).to_have_url("/accounts/password/reset/")
