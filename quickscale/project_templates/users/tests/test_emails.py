"""allauth's emails (confirm address, reset password) go through the outbox.

The request renders the email and queues it; the worker sends it. SMTP is the
process edge: Django's SMTP backend talks to a fake server on a local socket.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from common.models import QueuedEmail
from common.testing.mail import (
    FakeSMTPServer,
    body_of,
    fake_smtp_server,
    pending_email_builders,
    send_queued_emails,
    send_queued_emails_later,
    send_through,
)
from common.testing.tasks import queued_task_names
from users.models import CustomUser
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

SIGNUP = {"email": "eve@example.com", "password1": "Good-pass-4242", "password2": "Good-pass-4242"}


@pytest.fixture
def smtp(settings: Any) -> Iterator[FakeSMTPServer]:
    with fake_smtp_server() as server:
        send_through(settings, server)
        yield server


def test_the_confirmation_email_has_text_and_html_parts_with_the_project_name(
    client, settings, django_capture_on_commit_callbacks
):
    settings.PROJECT_NAME = "Acme Writer"
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_signup"), SIGNUP)
    assert mail.outbox == []  # queued by the request, sent by the worker
    send_queued_emails()

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


def test_the_password_reset_email_has_text_and_html_parts_with_the_project_name(
    client, settings, django_capture_on_commit_callbacks
):
    settings.PROJECT_NAME = "Acme Writer"
    make_user("dana@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": "dana@example.com"})
    send_queued_emails()

    message = mail.outbox[-1]
    assert isinstance(message, EmailMultiAlternatives)
    assert message.subject == "[Acme Writer] Reset your password"
    assert message.to == ["dana@example.com"]
    assert "/accounts/password/reset/key/" in message.body
    assert message.body.startswith("Hello from Acme Writer!")
    html = str(message.alternatives[0][0])
    assert "/accounts/password/reset/key/" in html


def test_a_reset_request_answers_while_the_mail_server_hangs_and_the_email_comes_later(
    client, smtp, django_capture_on_commit_callbacks
):
    smtp.script = ["hang"]
    make_user("dana@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("account_reset_password"), {"email": "dana@example.com"})

    assert response.status_code == 302
    assert smtp.connections == 0  # the request never talked to the mail server
    assert pending_email_builders() == ["common.email.prerendered"]  # the outbox row alone
    assert queued_task_names() == []
    send_queued_emails()  # the worker meets the hung server and gives up after EMAIL_TIMEOUT
    assert smtp.messages == []
    send_queued_emails_later()
    [message] = smtp.messages
    assert message["To"] == "dana@example.com"
    assert "/accounts/password/reset/key/" in body_of(message)


def test_a_refusing_mail_server_at_signup_creates_the_account_and_the_link_comes_on_retry(
    client, settings, smtp, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    smtp.script = ["busy"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("account_signup"), SIGNUP, follow=True)

    assert response.status_code == 200
    assert "could not send" not in response.content.decode()
    user = CustomUser.objects.get(email="eve@example.com")
    send_queued_emails()
    assert (smtp.connections, smtp.messages) == (1, [])  # refused: 421
    send_queued_emails_later()
    [message] = smtp.messages
    link = next(w for w in body_of(message).split() if "/accounts/confirm-email/" in w)
    assert client.post(link.split("testserver", 1)[1]).status_code == 302
    assert EmailAddress.objects.get(user=user).verified


def test_the_link_is_kept_in_the_queue_only_until_the_email_is_sent(
    client, django_capture_on_commit_callbacks
):
    make_user("dana@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": "dana@example.com"})
    queued = QueuedEmail.objects.get()
    assert queued.secret and "/accounts/password/reset/key/" in queued.params["body"]

    send_queued_emails()

    queued.refresh_from_db()
    assert (queued.state, queued.params) == ("sent", {})
    assert "/accounts/password/reset/key/" in mail.outbox[0].body
