"""Idle workers are woken by the commit of an enqueue (the trigger of migration common.0004) or
of a queued email (common.0005), never by a rollback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction

from common.mail_tasks import email_queue
from common.task_wakeup import Listener
from common.tests import sample_emails
from common.tests.sample_tasks import record

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener() -> Iterator[Listener]:
    listening = Listener()
    assert listening.wait(0) is False  # LISTEN is on before anything is enqueued
    yield listening
    listening.close()


def test_a_committed_enqueue_wakes_a_listening_worker(listener: Listener) -> None:
    with transaction.atomic():
        record.enqueue("one")
        record.enqueue("two")
        assert listener.wait(0.2) is False  # held back until the commit

    assert listener.wait(5) is True
    assert listener.wait(0.2) is False  # a burst of enqueues is one wake-up


def test_a_rolled_back_enqueue_wakes_nobody(listener: Listener) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        record.enqueue("one")
        1 / 0  # noqa: B018

    assert listener.wait(0.5) is False


def test_a_committed_email_wakes_a_listening_worker(listener: Listener) -> None:
    """The outbox row is the work item: its insert notifies as a task's does."""
    with transaction.atomic():
        email_queue(sample_emails.notice, address="eve@example.com")
        email_queue(sample_emails.notice, address="dan@example.com")
        assert listener.wait(0.2) is False  # held back until the commit

    assert listener.wait(5) is True
    assert listener.wait(0.2) is False  # one wake-up for the burst

    email_queue(sample_emails.notice, address="ann@example.com")  # autocommit
    assert listener.wait(5) is True


def test_a_rolled_back_email_wakes_nobody(listener: Listener) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        email_queue(sample_emails.notice, address="eve@example.com")
        1 / 0  # noqa: B018

    assert listener.wait(0.5) is False
