"""Queued emails: recorded with their cause, sent by the worker's source, retried, sent once.

SMTP is the process edge: Django's own SMTP backend talks to a fake server on a
local socket that refuses (421), refuses the recipient (550), hangs or accepts.
``send_queued_emails`` plays the worker's email thread with its own source
function; the worker process itself is in ``test_mail_worker``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tasks import task_backends
from django_tasks.backends.dummy import DummyBackend

from common.email import RenderedEmail
from common.mail_tasks import (
    EmailParameterError,
    email_queue,
    email_retry,
    retry_delay,
    send_next_due_email,
)
from common.models import QueuedEmail
from common.testing.mail import (
    Behaviour,
    FakeSMTPServer,
    body_of,
    fake_smtp_server,
    send_queued_emails,
    send_queued_emails_later,
    send_through,
)
from common.testing.tasks import queued_task_names
from common.tests import sample_emails

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings: Any) -> Iterator[FakeSMTPServer]:
    with fake_smtp_server() as server:
        send_through(settings, server)
        yield server


def _queue(**params: Any) -> QueuedEmail:
    return email_queue(sample_emails.notice, **params)


def test_a_queued_email_is_one_row_and_sent_by_the_worker_not_by_the_request() -> None:
    with CaptureQueriesContext(connection) as queries:
        email = email_queue(sample_emails.notice, key="notice:1", address="eve@example.com")

    # One statement (the row is the work item): no task row, nothing sent.
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith('INSERT INTO "common_queuedemail"')
    assert queued_task_names() == []
    assert mail.outbox == []
    assert QueuedEmail.objects.get().state == "pending"

    assert send_queued_emails() == 1
    [message] = mail.outbox
    assert (message.to, message.subject) == (["eve@example.com"], "Hello Eve")
    assert message.body == "Hi Eve."
    email.refresh_from_db()
    assert (email.state, email.attempts, email.recipients) == ("sent", 1, "eve@example.com")
    assert email.sent_at is not None
    assert send_queued_emails() == 0  # sent once


@override_settings(TASKS={"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}})
def test_on_another_task_backend_queueing_an_email_sends_no_job() -> None:
    """On RQ an email used to be a Redis job after the commit; now it is the row alone."""
    backend = task_backends["default"]
    assert isinstance(backend, DummyBackend)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        _queue(address="eve@example.com")

    assert backend.results == []
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    assert send_queued_emails() == 1
    assert [m.to for m in mail.outbox] == [["eve@example.com"]]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_sends_nothing() -> None:
    """A real commit decides (transaction=True): the row goes with the rollback."""

    class Refused(Exception):
        pass

    with pytest.raises(Refused), transaction.atomic():
        email_queue(sample_emails.notice, key="notice:rolled-back", address="eve@example.com")
        raise Refused

    assert QueuedEmail.objects.count() == 0
    assert send_queued_emails() == 0
    assert mail.outbox == []


def test_a_refused_send_waits_for_its_next_attempt_and_is_delivered_once(
    smtp: FakeSMTPServer,
) -> None:
    smtp.script = ["busy"]
    email = _queue(address="eve@example.com")

    before = timezone.now()
    assert send_queued_emails() == 1
    after = timezone.now()
    assert (smtp.connections, smtp.messages) == (1, [])
    email.refresh_from_db()
    assert (email.state, email.attempts, email.claimed_until) == ("pending", 1, None)
    assert "421" in email.last_error
    # Due again after EMAIL_RETRY_SECONDS: the row says when, and no task carries it.
    assert before + retry_delay(1) <= email.next_attempt_at <= after + retry_delay(1)
    assert queued_task_names() == []
    assert send_queued_emails() == 0  # not due yet
    assert smtp.connections == 1

    assert send_queued_emails_later() == 1
    [message] = smtp.messages
    assert message["To"] == "eve@example.com" and body_of(message).strip() == "Hi Eve."
    email.refresh_from_db()
    assert (email.state, email.attempts, email.last_error) == ("sent", 2, "")

    assert send_queued_emails_later() == 0  # nothing is due again once it is sent
    assert len(smtp.messages) == 1


def test_a_hung_mail_server_times_out_and_the_email_is_retried(smtp: FakeSMTPServer) -> None:
    """EMAIL_TIMEOUT (1 s here) bounds a silent server: the worker moves on."""
    smtp.script = ["hang"]
    email = _queue(address="eve@example.com")

    assert send_queued_emails() == 1
    email.refresh_from_db()
    assert email.state == "pending" and "timed out" in email.last_error

    assert send_queued_emails_later() == 1
    assert len(smtp.messages) == 1
    email.refresh_from_db()
    assert email.state == "sent"


def test_after_the_last_attempt_the_email_is_given_up_and_logged(
    smtp: FakeSMTPServer, settings: Any, caplog: Any
) -> None:
    settings.EMAIL_MAX_ATTEMPTS = 3
    smtp.script = ["busy", "busy", "busy", "busy"]
    email = _queue(key="notice:lost", address="eve@example.com")
    caplog.set_level(logging.ERROR, logger="common.mail_tasks")
    caplog.clear()

    send_queued_emails()
    send_queued_emails_later()
    assert caplog.records == []
    send_queued_emails_later()

    assert smtp.connections == 3
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("failed", 3)
    assert send_queued_emails_later() == 0  # nothing more is tried
    [record] = caplog.records
    assert record.getMessage() == "email given up"
    assert record.key == "notice:lost"
    assert record.to == "eve@example.com"
    assert record.params == {"address": "eve@example.com"}
    assert record.attempts == 3
    assert "421" in record.error


def test_a_recipient_the_server_refuses_for_good_is_given_up_at_once(
    smtp: FakeSMTPServer,
) -> None:
    smtp.script = ["reject"]
    email = _queue(address="nobody@example.com")

    send_queued_emails()

    email.refresh_from_db()
    assert (email.state, email.attempts) == ("failed", 1)
    assert "550" in email.last_error
    assert send_queued_emails_later() == 0


def test_a_builder_that_fails_is_retried_then_given_up(settings: Any, caplog: Any) -> None:
    settings.EMAIL_MAX_ATTEMPTS = 2
    email = email_queue(sample_emails.broken, address="eve@example.com")

    send_queued_emails()
    email.refresh_from_db()
    assert email.state == "pending" and "LookupError" in email.last_error
    send_queued_emails_later()

    email.refresh_from_db()
    assert email.state == "failed"
    assert mail.outbox == []
    assert any(r.getMessage() == "email given up" for r in caplog.records)


def test_an_email_with_nothing_left_to_send_is_skipped() -> None:
    """The builder reads the database at send time: a recipient gone means no email."""
    email = _queue(address="")

    send_queued_emails()

    email.refresh_from_db()
    assert email.state == "skipped"
    assert mail.outbox == []


def test_the_same_key_queued_twice_is_one_email() -> None:
    first = email_queue(sample_emails.notice, key="receipt:7", address="eve@example.com")
    second = email_queue(sample_emails.notice, key="receipt:7", address="other@example.com")

    assert first.pk == second.pk
    assert QueuedEmail.objects.get(pk=first.pk).params == {"address": "eve@example.com"}
    assert send_queued_emails() == 1
    assert [m.to for m in mail.outbox] == [["eve@example.com"]]


def test_emails_are_sent_oldest_due_first() -> None:
    later = _queue(address="later@example.com")
    sooner = _queue(address="sooner@example.com")
    QueuedEmail.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    QueuedEmail.objects.filter(pk=sooner.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=2)
    )

    assert send_queued_emails() == 2
    assert [m.to[0] for m in mail.outbox] == ["sooner@example.com", "later@example.com"]


def test_an_email_claimed_by_another_worker_is_left_to_it() -> None:
    email = _queue(address="eve@example.com")
    QueuedEmail.objects.filter(pk=email.pk).update(
        claimed_until=timezone.now() + timedelta(minutes=5)
    )

    assert send_queued_emails() == 0

    assert mail.outbox == []
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("pending", 0)


def test_an_email_whose_worker_died_is_taken_again_once_its_claim_lapses() -> None:
    """No sweep: the claim's end makes it due again, counting the lost attempt."""
    email = _queue(address="eve@example.com")
    QueuedEmail.objects.filter(pk=email.pk).update(
        attempts=1, claimed_until=timezone.now() - timedelta(seconds=1)
    )

    assert send_queued_emails() == 1

    assert [m.to for m in mail.outbox] == [["eve@example.com"]]
    email.refresh_from_db()
    assert (email.state, email.attempts, email.claimed_until) == ("sent", 2, None)


def test_an_email_whose_workers_keep_dying_is_given_up(settings: Any, caplog: Any) -> None:
    settings.EMAIL_MAX_ATTEMPTS = 3
    email = _queue(address="dying@example.com")
    QueuedEmail.objects.filter(pk=email.pk).update(
        attempts=3, claimed_until=timezone.now() - timedelta(seconds=1)
    )

    assert send_queued_emails() == 1

    assert mail.outbox == []
    assert "dying@example.com" not in sample_emails.builds  # not built a fourth time
    email.refresh_from_db()
    assert email.state == "failed" and "worker lost this email 3 times" in email.last_error
    assert any(r.getMessage() == "email given up" for r in caplog.records)


def test_secret_parameters_are_erased_once_the_email_is_sent() -> None:
    email = _queue(secret=True, address="eve@example.com", name="reset-link")
    assert email.params == {"address": "eve@example.com", "name": "reset-link"}

    send_queued_emails()

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
    params: dict[str, Any], message: str
) -> None:
    with pytest.raises(EmailParameterError, match=message):
        email_queue(sample_emails.notice, **params)

    assert QueuedEmail.objects.count() == 0


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


def _given_up(settings: Any, smtp: FakeSMTPServer, **params: Any) -> QueuedEmail:
    settings.EMAIL_MAX_ATTEMPTS = 1
    smtp.script = ["busy"]
    email = _queue(**params)
    send_queued_emails()
    email.refresh_from_db()
    assert email.state == "failed"
    return email


def test_staff_can_send_a_given_up_email_again_from_the_admin(
    client: Any, smtp: FakeSMTPServer, settings: Any
) -> None:
    email = _given_up(settings, smtp, address="eve@example.com")
    boss = get_user_model()._default_manager.create_superuser(
        email="boss@example.com", password="Boss-pass-4242"
    )
    client.force_login(boss)
    url = reverse("admin:common_queuedemail_changelist")
    assert email.key in client.get(url).content.decode()  # listed, with its key

    response = client.post(
        url,
        {"action": "send_again", "_selected_action": [str(email.pk)], "index": "0"},
        follow=True,
    )

    assert "1 email queued again." in response.content.decode()
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("pending", 0)  # due now, for the worker
    assert queued_task_names() == []
    assert send_queued_emails() == 1
    assert len(smtp.messages) == 1
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("sent", 1)


def test_a_given_up_email_whose_secret_was_erased_cannot_be_sent_again(
    smtp: FakeSMTPServer, settings: Any
) -> None:
    email = _given_up(settings, smtp, secret=True, address="eve@example.com")
    assert email.params == {}

    assert email_retry([email.pk]) == 0
    email.refresh_from_db()
    assert email.state == "failed"
    assert send_queued_emails_later() == 0


# Two workers at once: each takes a different email, and never waits for the other.


def _in_thread(work: Callable[[], Any], timeout: float = 10) -> Any:
    """Run ``work`` in a thread of its own (its own database connection); its result."""
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(work())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the second worker waited for the first's lock"
    assert results, "the second worker failed"
    return results[0]


@pytest.mark.django_db(transaction=True)
def test_a_second_worker_skips_the_email_the_first_is_claiming() -> None:
    first = _queue(address="first@example.com")
    second = _queue(address="second@example.com")

    with transaction.atomic():
        # A worker in the middle of claiming the oldest email holds its row's lock.
        QueuedEmail.objects.select_for_update().get(pk=first.pk)
        # Another worker, meanwhile, takes the next one at once (SKIP LOCKED)...
        assert _in_thread(send_next_due_email) is True
        # ...and finds nothing more it may take, without waiting either.
        assert _in_thread(send_next_due_email) is False

    assert [m.to for m in mail.outbox] == [["second@example.com"]]
    assert QueuedEmail.objects.get(pk=second.pk).state == "sent"
    assert QueuedEmail.objects.get(pk=first.pk).attempts == 0
    assert send_queued_emails() == 1  # the first, once its lock was let go
    assert sorted(m.to[0] for m in mail.outbox) == ["first@example.com", "second@example.com"]


@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_outbox_send_each_email_once() -> None:
    addresses = [f"user{n}@example.com" for n in range(30)]
    for address in addresses:
        _queue(address=address)
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        try:
            while send_next_due_email():
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(addresses)
    assert set(QueuedEmail.objects.values_list("state", "attempts")) == {("sent", 1)}


# A worker slower than its claim: another worker takes the email over, and the late one's
# outcome must not overwrite what the other records. Its claim lapses as in the tests
# above (the row's claim moved into the past); both claims are the real send function's.


def _lapse_claim(email: QueuedEmail) -> None:
    QueuedEmail.objects.filter(pk=email.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )


def _row(email: QueuedEmail) -> Mapping[str, Any]:
    return (
        QueuedEmail.objects.filter(pk=email.pk)
        .values("state", "attempts", "claimed_until", "next_attempt_at", "last_error", "sent_at")
        .get()
    )


def _start_worker() -> threading.Thread:
    """Another worker's email thread, on its own connection, sending the next due email."""

    def run() -> None:
        try:
            send_next_due_email()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def _lapsed_warnings(caplog: Any) -> list[tuple[str, int]]:
    return [
        (r.key, r.attempts)
        for r in caplog.records
        if r.getMessage() == "email claim lapsed; left to the worker that took it"
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("late_server", ["hang", "late-reject"], ids=["retry", "give-up"])
def test_a_late_worker_cannot_mark_failed_an_email_another_worker_sent(
    settings: Any, caplog: Any, late_server: Behaviour
) -> None:
    """The late worker's send fails after the other sent the email, for now (the server
    hung up) or for good (it refused the recipient): the email is neither retried nor
    given up (real commits: the workers are threads with connections of their own)."""
    settings.EMAIL_MAX_ATTEMPTS = 5
    with fake_smtp_server() as smtp:
        send_through(settings, smtp, timeout=10)
        smtp.script = [late_server, "accept"]
        email = _queue(key="notice:late", address="eve@example.com")
        late = _start_worker()
        _wait_for(lambda: smtp.connections == 1)  # stuck at a silent mail server
        _lapse_claim(email)

        assert send_next_due_email() is True  # another worker takes it and sends it
        sent = _row(email)
        assert (sent["state"], sent["attempts"], sent["claimed_until"]) == ("sent", 2, None)

        smtp.release()  # the late worker's exchange fails at last
        smtp.answer()
        late.join(10)
        assert not late.is_alive()

    assert _row(email) == sent
    assert len(smtp.messages) == 1
    assert _lapsed_warnings(caplog) == [("notice:late", 1)]
    assert not any(r.getMessage() == "email given up" for r in caplog.records)


@pytest.mark.django_db(transaction=True)
def test_a_late_worker_cannot_mark_sent_nor_unclaim_an_email_another_worker_took(
    settings: Any, caplog: Any
) -> None:
    """The late worker's message is accepted while another worker is sending the email:
    the row stays the other's, which records its own outcome (real commits, as above)."""
    with fake_smtp_server() as smtp:
        send_through(settings, smtp, timeout=10)
        smtp.script = ["late", "hang"]
        email = _queue(key="notice:late", address="eve@example.com")
        late = _start_worker()
        _wait_for(lambda: smtp.connections == 1)  # at a mail server slow to answer
        _lapse_claim(email)
        taker = _start_worker()
        _wait_for(lambda: smtp.connections == 2)  # another worker took it and is sending it
        taken = _row(email)
        assert (taken["state"], taken["attempts"]) == ("pending", 2)
        assert taken["claimed_until"] > timezone.now()

        smtp.answer()  # the late worker's message is accepted
        late.join(10)
        assert not late.is_alive()
        assert len(smtp.messages) == 1
        assert _row(email) == taken  # not marked sent, the other's claim kept

        smtp.release()  # the other worker's send fails: its claim holds, so it is recorded
        taker.join(10)
        assert not taker.is_alive()

    after = _row(email)
    assert (after["state"], after["attempts"], after["claimed_until"]) == ("pending", 2, None)
    assert after["last_error"].startswith("SMTPServerDisconnected")
    assert _lapsed_warnings(caplog) == [("notice:late", 1)]


def notice_built_by_a_stalled_worker(address: str) -> RenderedEmail | None:
    """``notice``, but the first worker to build it stalls past its claim, and another
    worker takes the email and sends it meanwhile (a builder of the test below)."""
    email = QueuedEmail.objects.get(params__address=address)
    rendered = sample_emails.notice(address)
    if email.attempts == 1:
        _lapse_claim(email)
        assert send_next_due_email() is True
    return rendered


def test_a_worker_whose_claim_lapsed_while_building_does_not_send(caplog: Any) -> None:
    email = email_queue(notice_built_by_a_stalled_worker, address="eve@example.com")

    assert send_next_due_email() is True

    assert [m.to for m in mail.outbox] == [["eve@example.com"]]  # by the other worker only
    assert (_row(email)["state"], _row(email)["attempts"]) == ("sent", 2)
    assert _lapsed_warnings(caplog) == [(email.key, 1)]
