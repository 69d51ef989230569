"""A task the tests of ``common.testing.tasks`` enqueue (tasks must live at module level)."""

from __future__ import annotations

from django_tasks import task

calls: list[str] = []


@task()
def record(value: str) -> None:
    calls.append(value)
