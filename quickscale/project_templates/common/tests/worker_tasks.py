"""Tasks the scheduler and worker tests enqueue (tasks must live at module level)."""

from __future__ import annotations

import time

from django_tasks import task


@task()
def beat() -> str:
    return "beat"


@task()
def other_beat() -> str:
    return "other beat"


@task()
def echo(value: str) -> str:
    return value


@task()
def slow_echo(seconds: float, value: str) -> str:
    time.sleep(seconds)
    return value
