from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.urls import reverse

from common.models import QueuedEmail
from common.testing.mail import (
    FakeSMTPServer,
    body_of,
    fake_smtp_server,
    send_queued_emails,
    send_queued_emails_later,
    send_through,
)
from public.models import ContactMessage

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
MESSAGE = {
    "name": "Eve",
    "email": "eve@example.com",
    "subject": "Hello",
    "message": "How do credits work?",
}


@pytest.fixture
def smtp(settings: Any) -> Iterator[FakeSMTPServer]:
    with fake_smtp_server() as server:
        send_through(settings, server)
        yield server


def test_a_message_is_stored_and_emailed_to_staff(
    client, staff, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("public:contact"), MESSAGE)
    assert response.status_code == 302
    stored = ContactMessage.objects.get()
    assert (stored.email, stored.ip_address) == ("eve@example.com", "127.0.0.1")
    assert mail.outbox == []  # queued; the worker sends it
    send_queued_emails()
    assert mail.outbox[-1].to == ["staff@example.com"]
    assert "How do credits work?" in mail.outbox[-1].body


def test_an_htmx_post_gets_the_thank_you_fragment(client, staff):
    response = client.post(reverse("public:contact"), MESSAGE, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="contact-panel"' in html
    assert "your message was sent" in html


def test_a_message_over_the_size_limit_is_refused(client, staff, settings):
    response = client.post(
        reverse("public:contact"), {**MESSAGE, "message": "x" * (settings.CONTACT_MAX_LENGTH + 1)}
    )
    assert response.status_code == 200
    assert "at most 5000 characters" in response.content.decode()
    assert ContactMessage.objects.count() == 0 and mail.outbox == []


def test_a_filled_honeypot_looks_sent_but_stores_and_mails_nothing(client, staff):
    response = client.post(reverse("public:contact"), {**MESSAGE, "website": "http://spam"}, **HTMX)
    assert "your message was sent" in response.content.decode()
    assert ContactMessage.objects.count() == 0 and mail.outbox == []


def test_messages_are_rate_limited_per_client_ip(client, staff, settings):
    settings.CONTACT_RATE_LIMIT_PER_HOUR = 2
    for _ in range(2):
        assert (
            client.post(reverse("public:contact"), MESSAGE, REMOTE_ADDR="192.0.2.1").status_code
            == 302
        )
    response = client.post(reverse("public:contact"), MESSAGE, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 429
    assert "several messages" in response.content.decode()
    assert ContactMessage.objects.count() == 2
    assert (
        client.post(reverse("public:contact"), MESSAGE, REMOTE_ADDR="192.0.2.2").status_code == 302
    )


def test_a_refusing_mail_server_neither_fails_the_message_nor_loses_its_email(
    client, staff, smtp, django_capture_on_commit_callbacks
):
    smtp.script = ["busy"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("public:contact"), MESSAGE)
    assert response.status_code == 302
    assert ContactMessage.objects.count() == 1
    assert smtp.connections == 0  # the request never talked to the mail server

    send_queued_emails()
    assert smtp.messages == []
    send_queued_emails_later()
    [message] = smtp.messages
    assert message["To"] == "staff@example.com"
    assert "How do credits work?" in body_of(message)


def test_with_no_staff_to_tell_the_email_is_skipped(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("public:contact"), MESSAGE)
    send_queued_emails()
    assert mail.outbox == []
    assert QueuedEmail.objects.get().state == "skipped"
