"""``enqueue_with_transaction``: in the caller's transaction on the database queue, else after."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django_tasks.backends.dummy import DummyBackend

from common.task_queue import enqueue_with_transaction, queue_is_database
from common.testing.tasks import queued_task_names
from common.tests.sample_tasks import record

pytestmark = pytest.mark.django_db(transaction=True)

RECORD = "common.tests.sample_tasks.record"
DUMMY = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


def test_on_the_database_queue_the_task_commits_and_rolls_back_with_its_cause() -> None:
    assert queue_is_database(record)
    with transaction.atomic():
        enqueue_with_transaction(record, "1")
    assert queued_task_names() == [RECORD]

    class Refused(Exception):
        pass

    with pytest.raises(Refused), transaction.atomic():
        enqueue_with_transaction(record, "2")
        raise Refused
    assert queued_task_names() == [RECORD]  # still the one


@override_settings(TASKS=DUMMY)
def test_on_another_backend_the_task_is_sent_once_the_transaction_commits() -> None:
    backend = record.get_backend()
    assert isinstance(backend, DummyBackend)
    assert not queue_is_database(record)
    with transaction.atomic():
        enqueue_with_transaction(record, "1")
        assert backend.results == []  # nothing sent before the commit
    assert [result.args for result in backend.results] == [["1"]]

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        enqueue_with_transaction(record, "2")
        1 / 0  # noqa: B018
    assert [result.args for result in backend.results] == [["1"]]  # a rollback sends nothing
    assert queued_task_names() == []  # and nothing went to the database queue


@override_settings(TASKS=DUMMY)
def test_a_send_that_fails_after_the_commit_is_logged_for_the_sweep(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(DummyBackend, "enqueue", refuse)
    with caplog.at_level(logging.ERROR, logger="common.task_queue"), transaction.atomic():
        enqueue_with_transaction(record, "7")
    [logged] = caplog.records
    assert logged.getMessage().startswith("task not enqueued after commit")
    assert logged.task_args == ["7"]  # type: ignore[attr-defined]
