"""Enqueue a task together with the caller's transaction.

On the database backend the task's row is written in the current transaction:
it commits with what caused it or rolls back with it, and costs no transaction
of its own. On any other backend (Redis) the enqueue cannot join the
transaction, so it is sent once the transaction commits; if that send fails or
the process dies first, the task is lost, and the caller's periodic sweep
finds the work and enqueues it again (every caller must have one).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction
from django_tasks.base import Task
from django_tasks_db.backend import DatabaseBackend

logger = logging.getLogger(__name__)


def queue_is_database(task: Task[Any, Any]) -> bool:
    """True when ``task`` is enqueued into this project's database (the default backend)."""
    return isinstance(task.get_backend(), DatabaseBackend)


def enqueue_with_transaction(task: Task[Any, Any], *args: Any) -> None:
    """Enqueue ``task(*args)`` in the current transaction, or once it commits.

    In it when the queue is this database (an error then is the transaction's,
    and propagates); otherwise after the commit, where a failed send is logged
    and left to the caller's sweep.
    """
    if queue_is_database(task):
        task.enqueue(*args)
    else:
        transaction.on_commit(partial(_send, task, args))


def _send(task: Task[Any, Any], args: tuple[Any, ...]) -> None:
    try:
        task.enqueue(*args)
    except Exception:
        logger.exception(
            "task not enqueued after commit; its sweep will enqueue it again",
            extra={"task": task.module_path, "task_args": list(args)},
        )
