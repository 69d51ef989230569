import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_the_confirmation_email_has_text_and_html_parts_with_the_project_name(client, settings):
    settings.PROJECT_NAME = "Acme Writer"
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    client.post(
        reverse("account_signup"),
        {"email": "eve@example.com", "password1": "Good-pass-4242", "password2": "Good-pass-4242"},
    )
    message = mail.outbox[-1]
    assert isinstance(message, EmailMultiAlternatives)
    assert "Acme Writer" in message.subject
    assert "Acme Writer" in message.body
    assert "/accounts/confirm-email/" in message.body
    html, mimetype = (str(part) for part in message.alternatives[0])
    assert mimetype == "text/html"
    assert "Acme Writer" in html and "/accounts/confirm-email/" in html
    for text in (str(message.subject), str(message.body), html):
        assert "example.com!" not in text and "testserver!" not in text
        assert "127.0.0.1" not in text


def test_the_password_reset_email_has_text_and_html_parts_with_the_project_name(client, settings):
    settings.PROJECT_NAME = "Acme Writer"
    make_user("dana@example.com")
    client.post(reverse("account_reset_password"), {"email": "dana@example.com"})
    message = mail.outbox[-1]
    assert isinstance(message, EmailMultiAlternatives)
    assert message.subject == "[Acme Writer] Reset your password"
    assert "/accounts/password/reset/key/" in message.body
    assert message.body.startswith("Hello from Acme Writer!")
    html = str(message.alternatives[0][0])
    assert "/accounts/password/reset/key/" in html


def test_a_mail_server_failure_is_logged_and_shown_never_a_500(client, caplog):
    make_user("dana@example.com")
    with mock.patch(
        "django.core.mail.EmailMessage.send", side_effect=smtplib.SMTPConnectError(421, "down")
    ):
        response = client.post(
            reverse("account_reset_password"), {"email": "dana@example.com"}, follow=True
        )
    assert response.status_code == 200
    assert "could not send the email" in response.content.decode()
    assert any("email could not be sent" in r.getMessage() for r in caplog.records)


def test_a_mail_failure_during_signup_still_creates_the_account(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    with mock.patch("django.core.mail.EmailMessage.send", side_effect=OSError("no route")):
        response = client.post(
            reverse("account_signup"),
            {
                "email": "eve@example.com",
                "password1": "Good-pass-4242",
                "password2": "Good-pass-4242",
            },
            follow=True,
        )
    assert response.status_code == 200
    assert "could not send the email" in response.content.decode()
