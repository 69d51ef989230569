"""Two-factor with an authenticator app and recovery codes, through the real views.

Codes are computed as an authenticator app does (RFC 6238, allauth's own HOTP
helper), from the secret the activation page shows.
"""

import time
from typing import Any

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.test import TestCase
from django.urls import reverse

from users.models import LoginLockout, SecurityEvent
from users.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

Kind = SecurityEvent.Kind


@pytest.fixture(autouse=True)
def _five_attempts_in_fifteen_minutes(settings: Any) -> None:
    settings.ACCOUNT_LOCKOUT_ATTEMPTS = 5
    settings.ACCOUNT_LOCKOUT_MINUTES = 15
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "20/m/ip,10/900s/key"}


def totp_code(secret: str, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or ``steps_ahead`` periods later)."""
    counter = int(time.time()) // mfa_settings.TOTP_PERIOD + steps_ahead
    return str(format_hotp_value(hotp_value(secret, counter)))


def sign_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    return client.post(reverse("account_login"), {"login": email, "password": password})


def signed_in(client: Any) -> bool:
    return "_auth_user_id" in client.session


def confirm(client: Any) -> None:
    """Confirm the password, as allauth asks before two-factor settings change."""
    answer = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert answer.status_code == 302, answer.content.decode()


def enable_totp(client: Any, user: Any) -> str:
    """Sign in and turn on the authenticator app through its page; return the secret."""
    assert sign_in(client, user.email).status_code == 302
    confirm(client)
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret: str = page.context["form"].secret
    assert 'src="data:image/svg+xml;base64,' in page.content.decode()  # the QR code
    # allauth announces the new authenticator once its transaction commits.
    with TestCase.captureOnCommitCallbacks(execute=True):
        answer = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert answer.status_code == 302, answer.content.decode()
    return secret


def sign_out(client: Any) -> None:
    client.post(reverse("account_logout"))
    assert not signed_in(client)


def recovery_codes(user: Any) -> list[str]:
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    codes: list[str] = RecoveryCodes(authenticator).get_unused_codes()
    return codes


def test_totp_enabled_then_sign_in_asks_for_a_code_and_accepts_the_right_one(client, user):
    secret = enable_totp(client, user)
    assert SecurityEvent.objects.filter(
        user=user, kind=Kind.MFA_ENABLED, detail="authenticator app"
    ).exists()
    assert len(recovery_codes(user)) == 10  # made with the app, shown once after it
    sign_out(client)

    answer = sign_in(client, user.email)
    assert answer.status_code == 302
    assert answer.url == reverse("mfa_authenticate")
    assert not signed_in(client)  # the password alone does not open the account
    page = client.get(answer.url).content.decode()
    assert "Two-factor authentication" in page
    assert "Use a passkey instead" not in page  # this account has no passkey

    # The code used to turn the app on is spent; the next one is accepted.
    answer = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret, steps_ahead=1)})
    if answer.status_code != 302:  # the clock crossed a period: the current code then
        answer = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert answer.status_code == 302
    assert signed_in(client)
    assert SecurityEvent.objects.filter(user=user, kind=Kind.MFA_USED).exists()


def test_a_wrong_code_is_counted_by_the_lockout_and_logged(client, user):
    enable_totp(client, user)
    sign_out(client)
    sign_in(client, user.email)

    page = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert page.status_code == 200
    assert "Incorrect code." in page.content.decode()
    assert not signed_in(client)
    row = LoginLockout.objects.get(scope=LoginLockout.Scope.ACCOUNT, key=user.email)
    assert row.failures == 1
    failed = SecurityEvent.objects.get(kind=Kind.MFA_FAILED)
    assert failed.user == user
    assert failed.detail == "authenticator app"


def test_five_wrong_codes_lock_the_account_even_against_the_right_code(client, user):
    secret = enable_totp(client, user)
    sign_out(client)
    sign_in(client, user.email)
    for _ in range(4):
        assert client.post(reverse("mfa_authenticate"), {"code": "000000"}).status_code == 200
    locked = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert SecurityEvent.objects.filter(kind=Kind.LOCKED_OUT, email=user.email).exists()

    # Starting over with the password is refused too while the lockout lasts.
    assert sign_in(client, user.email).status_code == 429
    assert client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)}).status_code != 200
    assert not signed_in(client)


def test_a_recovery_code_signs_in_once(client, user):
    enable_totp(client, user)
    code = recovery_codes(user)[0]
    sign_out(client)

    sign_in(client, user.email)
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    assert signed_in(client)
    used = SecurityEvent.objects.get(kind=Kind.MFA_RECOVERY_CODE_USED)
    assert used.user == user
    assert used.detail == "9 left"
    assert code not in recovery_codes(user)
    sign_out(client)

    sign_in(client, user.email)
    again = client.post(reverse("mfa_authenticate"), {"code": code})
    assert again.status_code == 200
    assert "Incorrect code." in again.content.decode()
    assert not signed_in(client)


def test_turning_the_app_off_is_logged_and_sign_in_needs_the_password_only(client, user):
    enable_totp(client, user)
    answer = client.post(reverse("mfa_deactivate_totp"))
    assert answer.status_code == 302
    assert not Authenticator.objects.filter(user=user).exists()  # recovery codes go with it
    assert SecurityEvent.objects.filter(
        user=user, kind=Kind.MFA_DISABLED, detail="authenticator app"
    ).exists()
    sign_out(client)
    sign_in(client, user.email)
    assert signed_in(client)


def test_the_two_factor_page_shows_each_method(client, user):
    sign_in(client, user.email)
    page = client.get(reverse("mfa_index")).content.decode()
    assert "Set up an authenticator app" in page
    assert "Add a passkey" in page
    assert 'class="box"' in page  # the site's layout, not allauth's bare page
