"""Queued emails: recorded with their cause, sent by the worker, retried, sent once.

SMTP is the process edge: Django's own SMTP backend talks to a fake server on a
local socket that refuses (421), refuses the recipient (550), hangs or accepts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from common.mail_tasks import (
    STALL,
    EmailParameterError,
    email_queue,
    email_retry,
    retry_delay,
    send_queued_email,
    sweep_queued_emails,
)
from common.models import QueuedEmail
from common.testing.mail import (
    FakeSMTPServer,
    body_of,
    fake_smtp_server,
    run_queued_tasks_later,
    send_through,
)
from common.testing.tasks import queued_task_names, run_queued_tasks
from common.tests import sample_emails

pytestmark = pytest.mark.django_db

SEND = "common.mail_tasks.send_queued_email"


@pytest.fixture
def smtp(settings: Any) -> Iterator[FakeSMTPServer]:
    with fake_smtp_server() as server:
        send_through(settings, server)
        yield server


def _queue_and_commit(capture: Any, **params: Any) -> QueuedEmail:
    with capture(execute=True):
        return email_queue(sample_emails.notice, **params)


def test_a_queued_email_is_sent_by_the_worker_not_by_the_request() -> None:
    email = email_queue(sample_emails.notice, key="notice:1", address="eve@example.com")

    # On the database backend the task is written in the caller's transaction
    # (it commits or rolls back with it: see the rollback test below).
    assert queued_task_names() == [SEND]
    assert mail.outbox == []  # queued only: the request sent nothing

    assert run_queued_tasks() == 1
    [message] = mail.outbox
    assert (message.to, message.subject) == (["eve@example.com"], "Hello Eve")
    assert message.body == "Hi Eve."
    email.refresh_from_db()
    assert (email.state, email.attempts, email.recipients) == ("sent", 1, "eve@example.com")
    assert email.sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_sends_nothing() -> None:
    """A real commit decides (transaction=True): on_commit never fires on a rollback."""

    class Refused(Exception):
        pass

    with pytest.raises(Refused), transaction.atomic():
        email_queue(sample_emails.notice, key="notice:rolled-back", address="eve@example.com")
        raise Refused

    assert QueuedEmail.objects.count() == 0
    assert queued_task_names() == []
    assert run_queued_tasks() == 0
    assert mail.outbox == []


def test_a_refused_send_is_retried_later_and_delivered_once(
    smtp: FakeSMTPServer, django_capture_on_commit_callbacks: Any
) -> None:
    smtp.script = ["busy"]
    email = _queue_and_commit(django_capture_on_commit_callbacks, address="eve@example.com")

    before = timezone.now()
    assert run_queued_tasks() == 1
    after = timezone.now()
    assert (smtp.connections, smtp.messages) == (1, [])
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("pending", 1)
    assert "421" in email.last_error
    # The task put itself back in the queue, to run after EMAIL_RETRY_SECONDS.
    retry = DBTaskResult.objects.get(status="READY")
    assert retry.task_path == SEND and retry.args_kwargs["args"] == [email.pk]
    assert before + retry_delay(1) <= retry.run_after <= after + retry_delay(1)
    assert run_queued_tasks() == 0  # not due yet

    assert run_queued_tasks_later() == 1
    [message] = smtp.messages
    assert message["To"] == "eve@example.com" and body_of(message).strip() == "Hi Eve."
    email.refresh_from_db()
    assert (email.state, email.attempts, email.last_error) == ("sent", 2, "")

    # Whatever runs later (a duplicate task, the sweep), it is not sent again.
    send_queued_email.enqueue(email.pk)
    assert sweep_queued_emails.call() == 0
    run_queued_tasks_later()
    assert len(smtp.messages) == 1


def test_a_hung_mail_server_times_out_and_the_email_is_retried(
    smtp: FakeSMTPServer, django_capture_on_commit_callbacks: Any
) -> None:
    """EMAIL_TIMEOUT (1 s here) bounds a silent server: the worker moves on."""
    smtp.script = ["hang"]
    email = _queue_and_commit(django_capture_on_commit_callbacks, address="eve@example.com")

    assert run_queued_tasks() == 1
    email.refresh_from_db()
    assert email.state == "pending" and "timed out" in email.last_error

    assert run_queued_tasks_later() == 1
    assert len(smtp.messages) == 1
    email.refresh_from_db()
    assert email.state == "sent"


def test_after_the_last_attempt_the_email_is_given_up_and_logged(
    smtp: FakeSMTPServer, settings: Any, caplog: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EMAIL_MAX_ATTEMPTS = 3
    smtp.script = ["busy", "busy", "busy", "busy"]
    email = _queue_and_commit(
        django_capture_on_commit_callbacks, key="notice:lost", address="eve@example.com"
    )
    caplog.set_level(logging.ERROR, logger="common.mail_tasks")
    caplog.clear()

    run_queued_tasks()
    run_queued_tasks_later()
    assert caplog.records == []
    run_queued_tasks_later()

    assert smtp.connections == 3
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("failed", 3)
    assert queued_task_names() == []  # nothing more is tried
    [record] = caplog.records
    assert record.getMessage() == "email given up"
    assert record.key == "notice:lost"
    assert record.to == "eve@example.com"
    assert record.params == {"address": "eve@example.com"}
    assert record.attempts == 3
    assert "421" in record.error


def test_a_recipient_the_server_refuses_for_good_is_given_up_at_once(
    smtp: FakeSMTPServer, django_capture_on_commit_callbacks: Any
) -> None:
    smtp.script = ["reject"]
    email = _queue_and_commit(django_capture_on_commit_callbacks, address="nobody@example.com")

    run_queued_tasks()

    email.refresh_from_db()
    assert (email.state, email.attempts) == ("failed", 1)
    assert "550" in email.last_error
    assert queued_task_names() == []


def test_a_builder_that_fails_is_retried_then_given_up(
    settings: Any, caplog: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EMAIL_MAX_ATTEMPTS = 2
    with django_capture_on_commit_callbacks(execute=True):
        email = email_queue(sample_emails.broken, address="eve@example.com")

    run_queued_tasks()
    email.refresh_from_db()
    assert email.state == "pending" and "LookupError" in email.last_error
    run_queued_tasks_later()

    email.refresh_from_db()
    assert email.state == "failed"
    assert mail.outbox == []
    assert any(r.getMessage() == "email given up" for r in caplog.records)


def test_an_email_with_nothing_left_to_send_is_skipped(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The builder reads the database at send time: a recipient gone means no email."""
    email = _queue_and_commit(django_capture_on_commit_callbacks, address="")

    run_queued_tasks()

    email.refresh_from_db()
    assert email.state == "skipped"
    assert mail.outbox == []


def test_the_same_key_queued_twice_is_one_email() -> None:
    first = email_queue(sample_emails.notice, key="receipt:7", address="eve@example.com")
    second = email_queue(sample_emails.notice, key="receipt:7", address="other@example.com")

    assert first.pk == second.pk
    assert QueuedEmail.objects.get(pk=first.pk).params == {"address": "eve@example.com"}
    # Each call enqueues a task (one statement cannot tell a new row from a found one);
    # the second finds the email sent and does nothing.
    assert run_queued_tasks() == 2
    assert [m.to for m in mail.outbox] == [["eve@example.com"]]


def test_two_tasks_for_one_email_send_it_once(django_capture_on_commit_callbacks: Any) -> None:
    email = _queue_and_commit(django_capture_on_commit_callbacks, address="eve@example.com")
    send_queued_email.enqueue(email.pk)

    assert run_queued_tasks() == 2
    assert len(mail.outbox) == 1


def test_an_email_claimed_by_another_worker_is_left_to_it(
    django_capture_on_commit_callbacks: Any,
) -> None:
    email = _queue_and_commit(django_capture_on_commit_callbacks, address="eve@example.com")
    QueuedEmail.objects.filter(pk=email.pk).update(
        claimed_until=timezone.now() + timedelta(minutes=5)
    )

    run_queued_tasks()

    assert mail.outbox == []
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("pending", 0)


def test_the_sweep_enqueues_an_email_whose_task_was_lost() -> None:
    """The enqueue after commit failed (Redis down), or the worker died holding the claim."""
    lost = email_queue(sample_emails.notice, address="lost@example.com")
    died = email_queue(sample_emails.notice, address="died@example.com")
    recent = email_queue(sample_emails.notice, address="recent@example.com")
    DBTaskResult.objects.all().delete()  # every task lost
    long_ago = timezone.now() - STALL - timedelta(seconds=1)
    QueuedEmail.objects.filter(pk=lost.pk).update(next_attempt_at=long_ago)
    QueuedEmail.objects.filter(pk=died.pk).update(
        next_attempt_at=long_ago, attempts=1, claimed_until=timezone.now() - timedelta(seconds=1)
    )

    assert sweep_queued_emails.call() == 2
    assert sweep_queued_emails.call() == 0  # left to the tasks just enqueued
    run_queued_tasks()

    assert sorted(m.to[0] for m in mail.outbox) == ["died@example.com", "lost@example.com"]
    recent.refresh_from_db()
    assert recent.state == "pending"  # its own task may still come: not the sweep's business


def test_secret_parameters_are_erased_once_the_email_is_sent(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        email = email_queue(
            sample_emails.notice, secret=True, address="eve@example.com", name="reset-link"
        )
    assert email.params == {"address": "eve@example.com", "name": "reset-link"}

    run_queued_tasks()

    email.refresh_from_db()
    assert (email.state, email.params) == ("sent", {})
    assert "reset-link" in mail.outbox[0].body


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"address": Decimal("5")}, "Decimal is not a plain value"),
        ({"address": object()}, "object is not a plain value"),
        ({"address": "eve@example.com", "colour": "red"}, "cannot take"),
        ({}, "cannot take"),
    ],
)
def test_parameters_the_worker_could_not_use_are_refused_and_nothing_is_queued(
    params: dict[str, Any], message: str, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(EmailParameterError, match=message),
    ):
        email_queue(sample_emails.notice, **params)

    assert QueuedEmail.objects.count() == 0
    assert queued_task_names() == []


def test_a_builder_the_worker_cannot_import_is_refused() -> None:
    def local_builder(address: str) -> None:
        return None

    with pytest.raises(EmailParameterError, match="module-level function"):
        email_queue(local_builder, address="eve@example.com")
    assert QueuedEmail.objects.count() == 0


def test_retries_wait_twice_as_long_each_time_up_to_an_hour(settings: Any) -> None:
    settings.EMAIL_RETRY_SECONDS = 60
    assert [retry_delay(n).total_seconds() for n in range(1, 9)] == [
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]


def _given_up(capture: Any, settings: Any, smtp: FakeSMTPServer, **params: Any) -> QueuedEmail:
    settings.EMAIL_MAX_ATTEMPTS = 1
    smtp.script = ["busy"]
    email = _queue_and_commit(capture, **params)
    run_queued_tasks()
    email.refresh_from_db()
    assert email.state == "failed"
    return email


def test_staff_can_send_a_given_up_email_again_from_the_admin(
    client: Any, smtp: FakeSMTPServer, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    email = _given_up(django_capture_on_commit_callbacks, settings, smtp, address="eve@example.com")
    boss = get_user_model()._default_manager.create_superuser(
        email="boss@example.com", password="Boss-pass-4242"
    )
    client.force_login(boss)
    url = reverse("admin:common_queuedemail_changelist")
    assert email.key in client.get(url).content.decode()  # listed, with its key

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {"action": "send_again", "_selected_action": [str(email.pk)], "index": "0"},
            follow=True,
        )

    assert "1 email queued again." in response.content.decode()
    run_queued_tasks()
    assert len(smtp.messages) == 1
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("sent", 1)


def test_a_given_up_email_whose_secret_was_erased_cannot_be_sent_again(
    smtp: FakeSMTPServer, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    email = _given_up(
        django_capture_on_commit_callbacks, settings, smtp, secret=True, address="eve@example.com"
    )
    assert email.params == {}

    assert email_retry([email.pk]) == 0
    email.refresh_from_db()
    assert email.state == "failed"
    assert queued_task_names() == []
