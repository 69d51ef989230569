"""Passkeys in a real Chromium, with its virtual authenticator (DevTools protocol).

The virtual authenticator stands in for a phone or a security key: it stores
the passkey the site registers and answers the site's sign-in challenges,
with the user present and verified. The live server runs at
http://localhost:PORT with DEBUG off, so WebAuthn's origin check runs as in
production (localhost is the one http origin browsers and fido2 accept).
"""

from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from playwright.sync_api import expect

from common.testing.browser import log_in
from users.models import SecurityEvent
from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_virtual_authenticator(page: Any) -> Any:
    """A platform authenticator (like a phone's) that holds passkeys and verifies its user."""
    session = page.context.new_cdp_session(page)
    session.send("WebAuthn.enable")
    session.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return session


def log_out(page: Any, email: str) -> None:
    page.get_by_role("link", name=email).click()  # the user menu
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Log in").first.wait_for()


def test_a_passkey_registers_then_signs_in_without_a_password_and_as_second_step(page):
    email = "passkey@example.com"
    user = make_user(email)
    add_virtual_authenticator(page)
    log_in(page, email, PASSWORD)
    page.get_by_role("link", name=email).wait_for()

    page.goto("/accounts/2fa/")
    page.get_by_role("link", name="Add a passkey").click()
    # allauth asks for the password again before two-factor settings change.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Add a passkey").wait_for()
    expect(page.get_by_label("Passwordless")).to_be_checked()
    page.get_by_label("Name").fill("Test phone")
    page.get_by_role("button", name="Add passkey").click()
    # The first second factor comes with recovery codes, shown once it is added.
    page.get_by_role("heading", name="Recovery codes").wait_for()
    passkey = Authenticator.objects.get(user=user, type=Authenticator.Type.WEBAUTHN)
    assert passkey.wrap().name == "Test phone"
    assert passkey.wrap().is_passwordless is True
    assert SecurityEvent.objects.filter(
        user=user, kind=SecurityEvent.Kind.MFA_ENABLED, detail="passkey Test phone"
    ).exists()
    log_out(page, email)

    # Passwordless: no email, no password, the authenticator answers the challenge.
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.get_by_role("link", name=email).wait_for()
    used = SecurityEvent.objects.get(user=user, kind=SecurityEvent.Kind.MFA_USED)
    assert used.detail == "passkey Test phone, passwordless sign-in"
    log_out(page, email)

    # As the second step after the password.
    log_in(page, email, PASSWORD)
    page.get_by_role("heading", name="Two-factor authentication").wait_for()
    page.get_by_role("button", name="Use a passkey instead").click()
    page.get_by_role("link", name=email).wait_for()
    assert SecurityEvent.objects.filter(
        user=user, kind=SecurityEvent.Kind.MFA_USED, detail="passkey Test phone"
    ).exists()
    page.console.assert_clean()
