"""Idle database workers are woken by an enqueue's commit (the trigger of migration common.0004)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction

from common.mail_tasks import send_queued_email
from common.task_wakeup import Listener

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener() -> Iterator[Listener]:
    listening = Listener()
    assert listening.wait(0) is False  # LISTEN is on before anything is enqueued
    yield listening
    listening.close()


def test_a_committed_enqueue_wakes_a_listening_worker(listener: Listener) -> None:
    with transaction.atomic():
        send_queued_email.enqueue(1)
        send_queued_email.enqueue(2)
        assert listener.wait(0.2) is False  # held back until the commit

    assert listener.wait(5) is True
    assert listener.wait(0.2) is False  # a burst of enqueues is one wake-up


def test_a_rolled_back_enqueue_wakes_nobody(listener: Listener) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        send_queued_email.enqueue(1)
        1 / 0  # noqa: B018

    assert listener.wait(0.5) is False
