from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from common.testing.mail import send_queued_emails
from users.models import CustomUser
from users.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def sign_up(client: Any, email: str, password: str, password2: str | None = None) -> Any:
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": password, "password2": password2 or password},
    )


def test_signup_with_an_existing_email_in_another_letter_case_is_refused(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    make_user("dana@example.com")
    response = sign_up(client, "DANA@Example.com", "Another-pass-99")
    assert response.status_code == 200
    assert "already registered" in response.content.decode()
    assert CustomUser.objects.filter(email__iexact="dana@example.com").count() == 1


def test_with_mandatory_verification_a_taken_email_is_not_revealed(
    client, settings, django_capture_on_commit_callbacks
):
    """allauth prevents enumeration: same answer, and the owner gets an email instead."""
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    make_user("dana@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_up(client, "Dana@EXAMPLE.com", "Another-pass-99")
    send_queued_emails()
    assert response.status_code == 302
    assert CustomUser.objects.filter(email__iexact="dana@example.com").count() == 1
    assert mail.outbox[-1].to == ["dana@example.com"]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-1A", "too short"),
        ("alllowercaseletters", "Use at least 3 of"),
        ("1234567890123", "entirely numeric"),
        ("Password123", "too common"),
    ],
)
def test_signup_with_a_weak_password_is_refused(client, settings, password, reason):
    # The default rules, whatever the project's .env sets: assigning the validator
    # list again makes Django build its validators anew, and they read these two.
    settings.PASSWORD_MIN_LENGTH = 10
    settings.PASSWORD_MIN_CHARACTER_CLASSES = 3
    settings.AUTH_PASSWORD_VALIDATORS = list(settings.AUTH_PASSWORD_VALIDATORS)
    response = sign_up(client, "weak@example.com", password)
    assert response.status_code == 200
    assert reason in response.content.decode()
    assert not CustomUser.objects.filter(email="weak@example.com").exists()


def test_the_password_field_is_tied_to_its_errors_for_screen_readers(client):
    html = sign_up(client, "weak@example.com", "short").content.decode()
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_password1_' in html
    assert 'id="id_password1_errors"' in html


@pytest.mark.parametrize(
    "email", ["not-an-email", "a@b", "two@@example.com", "spaces in@example.com"]
)
def test_signup_with_a_malformed_email_is_refused(client, email):
    response = sign_up(client, email, "Good-password-42")
    assert response.status_code == 200
    assert "valid email" in response.content.decode()
    assert CustomUser.objects.count() == 0


def test_signing_in_unverified_with_mandatory_verification_sends_a_new_link(
    client, settings, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    make_user("new@example.com", verified=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_login"), {"login": "new@example.com", "password": PASSWORD}
        )
    send_queued_emails()
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert not client.get("/").context["user"].is_authenticated
    assert "confirm" in mail.outbox[-1].body.lower()


def test_signup_then_the_emailed_link_verifies_the_account(
    client, settings, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    with django_capture_on_commit_callbacks(execute=True):
        assert sign_up(client, "fresh@example.com", "Fresh-password-42").status_code == 302
    send_queued_emails()
    message = mail.outbox[-1]
    link = next(word for word in message.body.split() if "/accounts/confirm-email/" in word)
    path = link.split("testserver", 1)[1]
    assert client.post(path).status_code == 302
    user = CustomUser.objects.get(email="fresh@example.com")
    assert EmailAddress.objects.get(user=user).verified


def test_the_signup_page_carries_the_strength_meter(client):
    html = client.get(reverse("account_signup")).content.decode()
    assert 'x-data="passwordStrength"' in html
    assert "x-cloak" in html  # hidden until Alpine runs: a hint, never a requirement
