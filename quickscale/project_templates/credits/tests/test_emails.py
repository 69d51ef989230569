"""Credit emails: the low-balance email goes through the outbox, the reminder is sent inline."""

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from common.models import QueuedEmail
from common.testing.mail import (
    FakeSMTPServer,
    fake_smtp_server,
    pending_email_builders,
    send_queued_emails,
    send_queued_emails_later,
    send_through,
)
from credits import ledger
from credits.emails import send_expiry_reminder_email, send_low_balance_email
from credits.exceptions import InsufficientCredits
from credits.models import CreditLot
from users.models import CustomUser

pytestmark = pytest.mark.django_db

LOW_BALANCE = "credits.emails.low_balance_email"


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.LOW_CREDIT_THRESHOLD = 10
    settings.PROJECT_NAME = "Acme AI"


@pytest.fixture
def smtp(settings: Any) -> Iterator[FakeSMTPServer]:
    with fake_smtp_server() as server:
        send_through(settings, server)
        yield server


def _consume(user: CustomUser, amount: int, reference: str, capture: Any) -> None:
    """Consume and commit (the low-balance email is decided after the commit)."""
    with capture(execute=True):
        ledger.consume(user, Decimal(amount), reference=reference)


def test_a_consume_that_crosses_the_threshold_sends_one_low_balance_email(
    user, django_capture_on_commit_callbacks
):
    ledger.grant(user, 20, source="purchase", reference="cs_1")

    _consume(user, 5, "use-1", django_capture_on_commit_callbacks)
    assert mail.outbox == []
    _consume(user, 6, "use-2", django_capture_on_commit_callbacks)
    _consume(user, 1, "use-3", django_capture_on_commit_callbacks)
    send_queued_emails()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]
    assert "Acme AI" in message.subject
    assert "balance is now 9 credits" in message.body
    assert isinstance(message, EmailMultiAlternatives)
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "Acme AI" in str(html)


def test_the_low_balance_email_comes_again_after_a_top_up_and_a_new_crossing(
    user, django_capture_on_commit_callbacks
):
    ledger.grant(user, 12, source="purchase", reference="cs_1")
    _consume(user, 5, "use-1", django_capture_on_commit_callbacks)
    ledger.grant(user, 10, source="purchase", reference="cs_2")

    _consume(user, 10, "use-2", django_capture_on_commit_callbacks)
    send_queued_emails()

    assert len(mail.outbox) == 2


def test_the_low_balance_email_waits_for_the_commit(user, django_capture_on_commit_callbacks):
    ledger.grant(user, 20, source="purchase", reference="cs_1")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ledger.consume(user, 15, reference="use-1")

    assert mail.outbox == []
    assert pending_email_builders() == []
    for callback in callbacks:  # the commit
        callback()
    assert pending_email_builders() == [LOW_BALANCE]


def test_the_consume_only_queues_the_email_even_when_the_mail_server_hangs(
    user, smtp, django_capture_on_commit_callbacks
):
    """The spend never talks to the mail server: a hung one cannot slow it."""
    smtp.script = ["hang"]
    ledger.grant(user, 20, source="purchase", reference="cs_1")

    _consume(user, 15, "use-1", django_capture_on_commit_callbacks)

    assert smtp.connections == 0
    assert pending_email_builders() == [LOW_BALANCE]
    assert QueuedEmail.objects.get().params == {"user_id": user.pk, "balance": "5.00"}
    # The worker meets the hung server, gives up after EMAIL_TIMEOUT, and sends it later.
    send_queued_emails()
    assert smtp.messages == []
    send_queued_emails_later()
    [message] = smtp.messages
    assert message["To"] == user.email
    assert "low" in str(message["Subject"])


def test_a_refused_consume_sends_nothing(user, django_capture_on_commit_callbacks):
    ledger.grant(user, 11, source="purchase", reference="cs_1")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(InsufficientCredits):
        ledger.consume(user, 12, reference="use-1")

    assert mail.outbox == []


def test_a_threshold_of_zero_switches_the_email_off(
    user, settings, django_capture_on_commit_callbacks
):
    settings.LOW_CREDIT_THRESHOLD = 0
    ledger.grant(user, 20, source="purchase", reference="cs_1")

    _consume(user, 20, "use-1", django_capture_on_commit_callbacks)

    assert pending_email_builders() == []
    assert mail.outbox == []


def test_the_expiry_reminder_lists_each_expiring_lot_with_its_date(user):
    expiry = timezone.now() + timedelta(days=2)
    ledger.grant(user, 30, source="subscription", reference="in_1", expires_at=expiry)

    send_expiry_reminder_email(user, list(CreditLot.objects.filter(user=user)))

    message = mail.outbox[0]
    assert "30 credits expire soon" in message.subject
    assert expiry.strftime("%Y-%m-%d") in message.body
    assert isinstance(message, EmailMultiAlternatives)
    assert "Acme AI" in str(message.alternatives[0][0])


def test_credit_emails_link_to_the_credits_page_with_the_sites_address(
    user, settings, django_capture_on_commit_callbacks
):
    """Emails are read outside the site, so their links carry SITE_URL."""
    settings.SITE_URL = "https://app.example.com"
    ledger.grant(user, 20, source="purchase", reference="cs_1")
    ledger.grant(
        user,
        5,
        source="subscription",
        reference="in_1",
        expires_at=timezone.now() + timedelta(days=2),
    )
    _consume(user, 16, "use-1", django_capture_on_commit_callbacks)
    send_queued_emails()
    send_expiry_reminder_email(user, list(CreditLot.objects.filter(source="subscription")))

    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert isinstance(message, EmailMultiAlternatives)
        assert "https://app.example.com/credits/" in message.body
        assert 'href="https://app.example.com/credits/"' in str(message.alternatives[0][0])


def test_a_mail_server_failure_is_retried_and_the_email_arrives_once(
    user, smtp, django_capture_on_commit_callbacks
):
    """The low-balance email runs after the consume commits: a refusal there is retried."""
    smtp.script = ["busy"]
    with django_capture_on_commit_callbacks(execute=True):
        send_low_balance_email(user.pk, Decimal(5))

    send_queued_emails()
    assert smtp.messages == []
    assert QueuedEmail.objects.get().state == "pending"
    send_queued_emails_later()
    send_queued_emails_later()

    assert len(smtp.messages) == 1
    assert QueuedEmail.objects.get().state == "sent"


def test_no_low_balance_email_goes_to_an_account_closed_before_it_was_sent(
    user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        send_low_balance_email(user.pk, Decimal(5))
    user.is_active = False
    user.save()

    send_queued_emails()

    assert mail.outbox == []
    assert QueuedEmail.objects.get().state == "skipped"


# --------------------------------------------------------------------------- holds


def _in_an_hour() -> Any:
    return timezone.now() + timedelta(hours=1)


def test_a_hold_that_takes_what_is_available_below_the_threshold_sends_the_email(
    user, django_capture_on_commit_callbacks
):
    ledger.grant(user, 20, source="purchase", reference="cs_1")

    with django_capture_on_commit_callbacks(execute=True):
        ledger.hold(user, 12, key="call-1", expires_at=_in_an_hour())
    send_queued_emails()

    assert len(mail.outbox) == 1
    assert "balance is now 8 credits" in mail.outbox[0].body  # what is left to spend


def test_a_settle_within_its_hold_sends_nothing_since_it_frees_credits(
    user, django_capture_on_commit_callbacks
):
    ledger.grant(user, 20, source="purchase", reference="cs_1")
    ledger.hold(user, 5, key="call-1", expires_at=_in_an_hour())

    with django_capture_on_commit_callbacks(execute=True):
        ledger.settle("call-1", amount=5)

    assert pending_email_builders() == []


def test_a_settle_whose_excess_crosses_the_threshold_sends_the_email(
    user, django_capture_on_commit_callbacks
):
    ledger.grant(user, 20, source="purchase", reference="cs_1")
    ledger.hold(user, 5, key="call-1", expires_at=_in_an_hour())

    with django_capture_on_commit_callbacks(execute=True):
        ledger.settle("call-1", amount=12)
    send_queued_emails()

    assert len(mail.outbox) == 1
    assert "balance is now 8 credits" in mail.outbox[0].body
