"""Screenshots of every page at desktop and phone widths, for a person to look at.

Not a test of behaviour, so the suite does not collect it (the file name does not
start with test_). Run it by naming it:

    pytest users/tests/screenshots.py          # into test-artifacts/screenshots/
    QS_SHOTS_DIR=/tmp/shots pytest users/tests/screenshots.py
"""

import os
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from common.testing.browser import DESKTOP, PHONE
from users.tests.factories import PASSWORD, make_user

SHOTS = os.environ.get("QS_SHOTS_DIR", "") or str(Path("test-artifacts") / "screenshots")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

ANONYMOUS = {
    "landing": "/",
    "about": "/about/",
    "contact": "/contact/",
    "login": "/accounts/login/",
    "signup": "/accounts/signup/",
    "password_reset": "/accounts/password/reset/",
    "password_reset_done": "/accounts/password/reset/done/",
    "verification_sent": "/accounts/confirm-email/",
    "bad_reset_key": "/accounts/password/reset/key/1-bad/",
    "inactive": "/accounts/inactive/",
    "not_found": "/no-such-page/",
}
SIGNED_IN = {
    "landing_signed_in": "/",
    "profile": "/accounts/profile/",
    "settings": "/accounts/settings/",
    "email": "/accounts/email/",
    "password_change": "/accounts/password/change/",
    "delete": "/accounts/delete/",
    "logout": "/accounts/logout/",
}


def shoot(page: Any, name: str) -> None:
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(Path(SHOTS) / f"{name}-{label}.png"), full_page=True)


def test_screenshots(page, settings):
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for name, path in ANONYMOUS.items():
        page.goto(path)
        shoot(page, name)
    make_user("dana@example.com")
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    page.goto("/accounts/signup/")
    page.locator("#id_email").fill("Dana@example.com")
    page.locator("#id_password1").fill("weakpass")
    page.locator("#id_password2").fill("other")
    page.get_by_role("button", name="Create account").click()
    shoot(page, "signup_errors")
    for _ in range(5):
        page.goto("/accounts/login/")
        page.locator("#id_login").fill("dana@example.com")
        page.locator("#id_password").fill("wrong")
        page.get_by_role("button", name="Log in").click()
    shoot(page, "lockout")
    from users.models import LoginLockout

    LoginLockout.objects.all().delete()
    page.goto("/accounts/login/")
    page.locator("#id_login").fill("dana@example.com")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    for name, path in SIGNED_IN.items():
        page.goto(path)
        shoot(page, name)
    page.set_viewport_size(DESKTOP)
    page.goto("/accounts/settings/")
    page.get_by_role("link", name="Delete my account…").click()
    page.screenshot(path=str(Path(SHOTS) / "delete_modal-desktop.png"))
    page.goto("/")
    page.get_by_role("link", name="dana@example.com").click()
    page.screenshot(path=str(Path(SHOTS) / "user_menu-desktop.png"))
    page.set_viewport_size(PHONE)
    page.get_by_role("button", name="menu").click()
    page.screenshot(path=str(Path(SHOTS) / "burger_open-phone.png"), full_page=True)
    assert mail.outbox is not None
