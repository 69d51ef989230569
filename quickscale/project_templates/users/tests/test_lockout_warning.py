"""The sign-in and code pages warn while one or two attempts are left before the lockout."""

from typing import Any

import pytest
from django.urls import reverse

from common.testing.html import texts
from users.tests.factories import PASSWORD
from users.tests.test_mfa import enable_totp, sign_out
from users.tests.test_mfa import sign_in as sign_in_with_password

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _five_attempts_in_fifteen_minutes(settings: Any) -> None:
    settings.ACCOUNT_LOCKOUT_ATTEMPTS = 5
    settings.ACCOUNT_LOCKOUT_MINUTES = 15
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "20/m/ip,10/900s/key"}


def warning(response: Any) -> str:
    """The page's attempts-left warning, "" when it shows none."""
    assert response.status_code == 200
    return texts(response.content.decode()).get("attempts-left", "")


def sign_in(client: Any, email: str, password: str, **extra: Any) -> Any:
    return client.post(reverse("account_login"), {"login": email, "password": password}, **extra)


def test_the_login_page_counts_down_the_last_two_attempts(client, user):
    for _ in range(2):
        assert warning(sign_in(client, user.email, "wrong")) == ""
    assert warning(sign_in(client, user.email, "wrong")) == (
        "2 attempts left before your account is locked for 15 minutes."
    )
    assert warning(sign_in(client, user.email, "wrong")) == (
        "1 attempt left before your account is locked for 15 minutes."
        " Not sure of your password? Reset it instead."
    )
    # The fifth gets the lockout page, which says after how many and for how long.
    locked = sign_in(client, user.email, "wrong")
    assert locked.status_code == 429
    assert "locked for 15 minutes after 5 wrong passwords or codes" in " ".join(
        locked.content.decode().split()
    )


def test_the_warning_counts_the_client_ip_when_it_is_nearer_its_limit(client, user):
    for n in range(3):
        sign_in(client, f"other{n}@example.com", "wrong", REMOTE_ADDR="10.9.9.9")
    # This account's first failure, but the IP's fourth: one attempt left from here.
    assert warning(sign_in(client, user.email, "wrong", REMOTE_ADDR="10.9.9.9")).startswith(
        "1 attempt left"
    )
    # From another IP the account has four attempts left: no warning.
    assert warning(sign_in(client, user.email, "wrong", REMOTE_ADDR="10.9.9.10")) == ""


def test_the_warning_follows_the_settings(client, settings, user):
    settings.ACCOUNT_LOCKOUT_ATTEMPTS = 2
    settings.ACCOUNT_LOCKOUT_MINUTES = 30
    assert warning(sign_in(client, user.email, "wrong")).startswith(
        "1 attempt left before your account is locked for 30 minutes."
    )


def test_a_good_sign_in_starts_the_count_again(client, user):
    for _ in range(3):
        sign_in(client, user.email, "wrong", REMOTE_ADDR="10.8.8.1")
    assert sign_in(client, user.email, PASSWORD, REMOTE_ADDR="10.8.8.2").status_code == 302
    client.logout()
    assert warning(sign_in(client, user.email, "wrong", REMOTE_ADDR="10.8.8.2")) == ""


def test_the_two_factor_code_step_warns_too(client, user):
    enable_totp(client, user)
    sign_out(client)
    sign_in_with_password(client, user.email)
    pages = [client.post(reverse("mfa_authenticate"), {"code": "000000"}) for _ in range(4)]
    assert warning(pages[0]) == ""
    assert warning(pages[2]) == "2 attempts left before your account is locked for 15 minutes."
    # No password reset offered at the code step: the password was right.
    assert warning(pages[3]) == "1 attempt left before your account is locked for 15 minutes."
