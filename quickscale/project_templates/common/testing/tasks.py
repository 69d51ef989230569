"""Run what the task queue holds, in the test's own process and database connection.

The suite enqueues on the real backend (``django-tasks-db``'s PostgreSQL table),
so a test sees exactly what production queues. ``run_queued_tasks`` then plays
the worker with ``db_worker``'s own ``Worker``: it claims each ready task the way
the worker does and runs it through ``Worker.run_task``, which records the result.
It does not call the ``db_worker`` command itself, whose loop closes "old"
database connections, which inside a test's transaction is the test's own.
Tests of the worker process start ``manage.py worker`` as a subprocess instead.

Only tasks: the worker's work sources are played by their own helpers
(``common.testing.mail.send_queued_emails`` for the email outbox,
``stripe_manager.tests.factories.apply_received_events`` for Stripe events).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult, get_date_max

_MAX_TASKS = 10_000


def run_queued_tasks(*, limit: int = _MAX_TASKS) -> int:
    """Run every task that is ready now (and those they enqueue); return how many ran."""
    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    ran = 0
    while ran < limit:
        with transaction.atomic():
            task_result = DBTaskResult.objects.ready().get_locked()
            if task_result is None:
                return ran
            task_result.claim(worker.worker_id)
        worker.run_task(task_result)
        ran += 1
    raise RuntimeError(f"More than {limit} tasks ran: a task keeps enqueuing another.")


def run_queued_tasks_later() -> int:
    """Run the queued tasks as if the time they wait for (``run_after``) had come."""
    waiting = DBTaskResult.objects.filter(status="READY", run_after__gt=timezone.now())
    waiting.exclude(run_after=get_date_max()).update(run_after=timezone.now())
    return run_queued_tasks()


def queued_task_names() -> list[str]:
    """The dotted paths of the tasks waiting in the queue, oldest first."""
    return list(
        DBTaskResult.objects.filter(status="READY")
        .order_by("enqueued_at", "id")
        .values_list("task_path", flat=True)
    )
