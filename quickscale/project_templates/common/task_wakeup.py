"""Wake idle database workers the moment a task is enqueued, instead of at their next poll.

A worker of the database backend finds new tasks by polling its table. Alone,
that makes a task wait up to a whole poll interval before it starts. So every
enqueue on the database backend also sends a PostgreSQL ``NOTIFY``: a trigger
on the task table does it in the enqueue's own transaction (migration
``common.0004``; delivered when it commits, never for a task rolled back, and
at no extra round trip), and an idle worker waits on ``LISTEN`` with the poll
interval as its timeout. Every listener wakes and they race for the task under
``SKIP LOCKED``; the loser finds nothing and waits again. Tables whose rows are
work items of their own (``WORKER_SOURCES``: stored Stripe events, queued
emails) have the same trigger on the same channel (``stripe_manager.0007``,
``common.0005``), and their threads in the worker listen too.

Polling stays the rule, the notice a shortcut: where notices never arrive
(PgBouncer in transaction mode, a listener connection that broke), tasks
still start within the poll interval.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from django.db import connections

logger = logging.getLogger(__name__)

# The channel the triggers of migration common.0004 (and of the work sources' tables) notify.
CHANNEL = "quickscale_tasks"


class Listener:
    """A connection of its own that LISTENs on ``CHANNEL``; ``wait`` returns on a notice or timeout.

    Django's connection is closed between polls (``close_old_connections``) and
    may sit inside a transaction, where notices are held back; this one stays
    open in autocommit. If it breaks, ``wait`` sleeps out its timeout instead
    and the next call reconnects.
    """

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._connection: psycopg.Connection[Any] | None = None

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a notice; True when one (or more) came."""
        try:
            listening = self._listening()
            received = False
            for _ in listening.notifies(timeout=timeout, stop_after=1):
                received = True
            # Drain notices that came in the same packet or since, so a burst of
            # enqueues is one wake-up, not one per task.
            for _ in listening.notifies(timeout=0):
                pass
            return received
        except psycopg.Error as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            logger.warning("task notices unavailable; polling", extra={"error": message})
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _listening(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            params = connections[self.alias].get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self._connection = psycopg.connect(**params, autocommit=True)
            self._connection.execute(f"LISTEN {CHANNEL}")
        return self._connection
