"""The periodic scheduler: enqueue each task of PERIODIC_TASKS once per interval, whatever runs.

Every worker process (``manage.py worker``) runs a ``Scheduler`` in a thread,
so periodic work needs no cron and goes on while any worker lives. Two rules
keep a run from being enqueued twice:

1. **A lease row decides who schedules** (``SchedulerLease``). Each tick a
   scheduler takes or renews it with one conditional upsert, which succeeds
   only for its holder or once the lease has expired; the others do nothing
   that tick. A dead holder's lease lapses after ``LEASE_SECONDS`` and another
   scheduler takes over. A row rather than a session advisory lock: those
   break behind PgBouncer in transaction mode.
2. **A run row decides each run** (``PeriodicRun``). A due run is enqueued in
   the transaction that moves its ``next_run_at`` on, under the row's lock
   (``SKIP LOCKED``: a second scheduler skips the row instead of waiting, then
   finds it no longer due). So even two schedulers that both believe they hold
   the lease, say one that paused past its lease while another took it over,
   enqueue a run once.

Time is the database's (``statement_timestamp()``), so the clocks of the
hosts that run workers do not matter. A task new to PERIODIC_TASKS runs at the
next tick, then every interval; a run missed while no worker ran happens once
at the next tick (no catch-up of every missed interval).

The scheduler knows the tasks only by their dotted paths in settings, so this
module (in ``common``, the lowest app) imports no app above it. With the
database task backend the enqueue is a row written in the same transaction;
with a backend elsewhere (Redis) it is sent once that transaction commits, so a
crash in between loses that run (the next interval brings it) rather than
doubling it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils.module_loading import import_string
from django_tasks.base import Task
from django_tasks_db.backend import DatabaseBackend

from common.models import PeriodicRun

logger = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
# How long a lease lasts without renewal: a dead holder is replaced this much later.
LEASE_SECONDS = 30
# How often a scheduler renews its lease and looks for due runs; a run is at
# most this late. Several ticks fit in a lease, so one slow tick loses nothing.
TICK_SECONDS = 5.0

_TAKE_LEASE = """
INSERT INTO common_schedulerlease (name, holder, expires_at)
VALUES (%(name)s, %(holder)s, statement_timestamp() + make_interval(secs => %(seconds)s))
ON CONFLICT (name) DO UPDATE
    SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
    WHERE common_schedulerlease.holder = EXCLUDED.holder
       OR common_schedulerlease.expires_at <= statement_timestamp()
RETURNING holder
"""
_RELEASE_LEASE = "DELETE FROM common_schedulerlease WHERE name = %(name)s AND holder = %(holder)s"


@dataclass(frozen=True)
class PeriodicTask:
    """One entry of PERIODIC_TASKS: the task's dotted path and its interval."""

    path: str
    interval: timedelta


def periodic_tasks() -> list[PeriodicTask]:
    """PERIODIC_TASKS as read from settings; ImproperlyConfigured (one line) when malformed."""
    configured = getattr(settings, "PERIODIC_TASKS", {})
    if not isinstance(configured, dict):
        raise ImproperlyConfigured(
            "PERIODIC_TASKS must map dotted task paths to intervals in seconds, "
            'e.g. {"credits.tasks.expire_credits": 3600}.'
        )
    tasks = []
    for path, seconds in configured.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise ImproperlyConfigured(
                f"PERIODIC_TASKS[{path!r}] must be a whole number of seconds of at least 1, "
                f"not {seconds!r}."
            )
        tasks.append(PeriodicTask(path=path, interval=timedelta(seconds=seconds)))
    return tasks


def load_task(path: str) -> Task[..., Any]:
    """The task at ``path``; ImproperlyConfigured (one line) when there is none."""
    try:
        found = import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"PERIODIC_TASKS names {path!r}, which cannot be imported ({error})."
        ) from None
    if not isinstance(found, Task):
        raise ImproperlyConfigured(
            f"PERIODIC_TASKS names {path!r}, which is not a task: define it with "
            "@task() from django_tasks."
        )
    return found


def check_periodic_tasks() -> list[PeriodicTask]:
    """Every configured task, each proven importable; what the worker checks at start."""
    tasks = periodic_tasks()
    for periodic in tasks:
        load_task(periodic.path)
    return tasks


def _enqueue(task: Task[..., Any]) -> None:
    """Enqueue inside the current transaction when the queue is this database, else after it."""
    if isinstance(task.get_backend(), DatabaseBackend):
        task.enqueue()
    else:
        transaction.on_commit(task.enqueue)


class Scheduler:
    """One scheduler: ``tick()`` enqueues what is due, if this scheduler holds the lease."""

    def __init__(self, holder: str | None = None, *, lease_seconds: int = LEASE_SECONDS) -> None:
        self.holder = holder or uuid.uuid4().hex
        self.lease_seconds = lease_seconds
        self.holds_lease = False

    def tick(self) -> list[str]:
        """Renew (or take) the lease, then enqueue the due runs; return their task paths."""
        if not self.take_lease():
            return []
        return self.enqueue_due()

    def take_lease(self) -> bool:
        """True when this scheduler holds the lease now (taken, renewed, or taken over)."""
        with connection.cursor() as cursor:
            cursor.execute(
                _TAKE_LEASE,
                {"name": LEASE_NAME, "holder": self.holder, "seconds": self.lease_seconds},
            )
            holds = cursor.fetchone() is not None
        if holds != self.holds_lease:
            logger.info(
                "scheduler lease taken" if holds else "scheduler lease held by another worker",
                extra={"holder": self.holder},
            )
        self.holds_lease = holds
        return holds

    def release_lease(self) -> None:
        """Give the lease up (on shutdown), so another scheduler takes it at its next tick."""
        with connection.cursor() as cursor:
            cursor.execute(_RELEASE_LEASE, {"name": LEASE_NAME, "holder": self.holder})
        self.holds_lease = False

    def enqueue_due(self) -> list[str]:
        """Enqueue every due run once and move it on by its interval, in one transaction."""
        tasks = {periodic.path: periodic for periodic in periodic_tasks()}
        if not tasks:
            return []
        enqueued = []
        with transaction.atomic():
            now = _database_now()
            PeriodicRun.objects.bulk_create(
                [PeriodicRun(task=path, next_run_at=now) for path in tasks],
                ignore_conflicts=True,
            )
            # A row another scheduler has locked is being run by it: skip it, never wait.
            runs = (
                PeriodicRun.objects.select_for_update(skip_locked=True)
                .filter(task__in=tasks)
                .order_by("task")
            )
            for run in runs:
                interval = tasks[run.task].interval
                # Due, or set further ahead than its interval (the interval was shortened).
                if now < run.next_run_at <= now + interval:
                    continue
                _enqueue(load_task(run.task))
                run.next_run_at, run.last_run_at = now + interval, now
                run.save(update_fields=["next_run_at", "last_run_at"])
                enqueued.append(run.task)
        if enqueued:
            logger.info("periodic tasks enqueued", extra={"tasks": enqueued})
        return enqueued

    def run(
        self,
        stop: threading.Event,
        *,
        tick_seconds: float = TICK_SECONDS,
        on_tick: Callable[[list[str]], None] | None = None,
    ) -> None:
        """Tick every ``tick_seconds`` until ``stop`` is set, then release the lease.

        A tick that fails (the database went away) is logged and retried at the next
        one: the scheduler outlives an outage, as the worker beside it does.
        """
        logger.info("scheduler started", extra={"holder": self.holder})
        try:
            while not stop.is_set():
                try:
                    enqueued = self.tick()
                except (DatabaseError, ImproperlyConfigured) as error:
                    lines = str(error).strip().splitlines() or [repr(error)]
                    logger.warning(
                        "scheduler tick failed; trying again at the next",
                        extra={"holder": self.holder, "error": lines[0]},
                    )
                    self.holds_lease = False
                else:
                    if on_tick is not None:
                        on_tick(enqueued)
                finally:
                    # Like a request's end: drop a broken or over-age connection.
                    close_old_connections()
                stop.wait(tick_seconds)
        finally:
            if self.holds_lease:
                try:
                    self.release_lease()
                except DatabaseError:
                    logger.warning("scheduler lease not released; it lapses by itself")
            connection.close()
            logger.info("scheduler stopped", extra={"holder": self.holder})


def _database_now() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        row = cursor.fetchone()
    assert row is not None
    now: datetime = row[0]
    return now
