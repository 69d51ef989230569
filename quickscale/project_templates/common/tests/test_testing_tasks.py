"""The test helper that plays the worker runs what a real enqueue put in the table."""

from __future__ import annotations

import pytest

from common.testing.tasks import queued_task_names, run_queued_tasks
from common.tests import sample_tasks

pytestmark = pytest.mark.django_db


def test_an_enqueued_task_waits_in_the_table_until_the_worker_runs_it() -> None:
    sample_tasks.calls.clear()
    sample_tasks.record.enqueue("hello")

    assert queued_task_names() == ["common.tests.sample_tasks.record"]
    assert sample_tasks.calls == []

    assert run_queued_tasks() == 1
    assert sample_tasks.calls == ["hello"]
    assert queued_task_names() == []
