"""What ``manage.py worker`` runs: start-up checks, then the task worker beside the scheduler.

One worker process per project (more only for throughput) runs all of the
background work:

- the **task worker** of the configured backend in the main thread: for
  ``TASK_BACKEND=database``, django-tasks-db's ``Worker`` (its own
  ``run_task``, so results are recorded as ``db_worker`` records them) driven
  by a loop that also wakes on ``common.task_wakeup``'s notices; for
  ``TASK_BACKEND=rq``, RQ's worker (django-rq's, with the job class
  django-tasks-rq needs and RQ's own scheduler for delayed tasks);
- the **periodic scheduler** (``common.scheduler``) in a thread, which
  enqueues PERIODIC_TASKS for whichever worker takes them;
- **work sources** (``WORKER_SOURCES``), on either backend, each in a thread
  of its own (a ``SourceRunner`` per source): tables whose rows are their own
  work items (Stripe events stored by the webhook, queued emails), each a
  function that applies one due item and says whether there was one. A thread
  applies every due item of its source, then waits for the tasks' notice (the
  tables' triggers send it too) or its poll interval. Threads rather than
  turns between tasks: a task runs to its end, so a ten-minute job would hold
  every customer's purchase back that long; and one thread per source, so a
  mail server that hangs for ``EMAIL_TIMEOUT`` never delays a payment.

Before any of that, ``check_ready`` proves the database answers and is
migrated, every periodic task imports, and (for rq) Redis answers; a failure
is a ``WorkerStartError`` whose message is the one line the command prints.

Shutdown: SIGTERM or SIGINT lets the running task finish, then the worker, the
work sources' threads and the scheduler stop (the scheduler gives its lease up,
so another worker takes over at once). A work source's thread stops after the
item it is applying, given ``SOURCES_JOIN_SECONDS`` (all of them together) to
finish it; one still busy then ends with the process, and its item is due again
as a dead worker's is.
A repeated SIGTERM changes nothing (a supervisor may send one to the process
group and one to the worker); a second SIGINT (Ctrl-C twice) abandons the
running task, which is then recorded as failed.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import (
    DatabaseError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from django.db.migrations.executor import MigrationExecutor
from django.utils.module_loading import import_string
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from common.scheduler import Scheduler, check_periodic_tasks
from common.task_wakeup import Listener

logger = logging.getLogger(__name__)

# How often an idle database worker looks at its table when no notice wakes it.
POLL_SECONDS = 1.0
# The longest a stop request waits for an idle worker to notice it.
STOP_CHECK_SECONDS = 0.5
# Pause after the database failed under the worker's loop, before it tries again.
RETRY_SECONDS = 2.0
# The longest the command waits for the scheduler thread once the worker stopped.
SCHEDULER_JOIN_SECONDS = 10.0
# The longest the command waits for the work sources' threads, all together (the items
# they are applying: an email's send gives up after EMAIL_TIMEOUT per SMTP step).
SOURCES_JOIN_SECONDS = 30.0
# Seconds a worker keeps its database connection between tasks and polls (one
# process, no pool; health-checked before reuse). DB_CONN_MAX_AGE, when set, wins.
WORKER_CONN_MAX_AGE = 300


class WorkerStartError(Exception):
    """The worker cannot start. The message is one line: what is wrong and what to do."""


def check_ready() -> None:
    """Raise ``WorkerStartError`` unless everything the worker needs is there."""
    _check_database()
    try:
        check_periodic_tasks()
    except ImproperlyConfigured as error:
        raise WorkerStartError(f"{error} Fix PERIODIC_TASKS in core/settings.py.") from None
    try:
        work_sources()
    except ImportError as error:
        raise WorkerStartError(
            f"A WORKER_SOURCES entry does not import ({error}). Fix it in core/settings.py."
        ) from None
    if settings.TASK_BACKEND == "rq":
        _check_redis()


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _check_database() -> None:
    try:
        connection.ensure_connection()
    except OperationalError as error:
        raise WorkerStartError(
            f"Cannot reach the database ({_first_line(error)}). Start PostgreSQL "
            "(quickscale up starts it) or point DATABASE_URL (or DB_*) in .env at a running one."
        ) from None
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise WorkerStartError(
            f"The database has {len(pending)} unapplied migrations. Run `python manage.py "
            "bootstrap` first (quickscale up and the web container run it)."
        )


def _check_redis() -> None:
    import django_rq
    from redis.exceptions import RedisError

    try:
        django_rq.get_connection("default").ping()
    except RedisError as error:
        raise WorkerStartError(
            f"Cannot reach Redis at REDIS_URL ({_first_line(error)}). Start Redis, or set "
            "TASK_BACKEND=database in .env to queue tasks in PostgreSQL."
        ) from None


def work_sources() -> list[Callable[[], bool]]:
    """``WORKER_SOURCES``' functions: each applies one due item of its table, True if it did."""
    return [import_string(path) for path in getattr(settings, "WORKER_SOURCES", [])]


class DatabaseWorker:
    """Claim and run tasks of the database backend until ``stopping`` is set.

    django-tasks-db's ``Worker`` runs each task and records its result; this loop
    replaces its ``run`` (which only sleeps between polls) so that an idle worker
    also wakes on a notice, and so that the database going away pauses the
    worker instead of ending it.
    """

    def __init__(
        self, *, worker_id: str, poll_seconds: float = POLL_SECONDS, listen: bool = True
    ) -> None:
        self.worker = Worker(
            queue_names=["*"],
            interval=poll_seconds,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=worker_id,
            excluded_queue_names=[],
        )
        self.poll_seconds = poll_seconds
        self.listener = Listener() if listen else None
        self.stopping = False

    def run(self) -> None:
        logger.info(
            "task worker started",
            extra={"worker_id": self.worker.worker_id, "backend": "database"},
        )
        try:
            while not self.stopping:
                try:
                    ran = self.run_next()
                except DatabaseError as error:
                    # One line per retry: an outage must not fill the log with tracebacks.
                    logger.warning(
                        "task worker lost the database; retrying",
                        extra={"error": _first_line(error), "retry_seconds": RETRY_SECONDS},
                    )
                    connection.close()
                    self._wait(RETRY_SECONDS)
                    continue
                if not ran and not self.stopping:
                    self._wait(self.poll_seconds)
        finally:
            if self.listener is not None:
                self.listener.close()
            logger.info("task worker stopped", extra={"worker_id": self.worker.worker_id})

    def run_next(self) -> bool:
        """Claim the next ready task (skipping those others hold) and run it; False if none."""
        close_old_connections()
        with transaction.atomic():
            task_result = DBTaskResult.objects.ready().filter(backend_name="default").get_locked()
            if task_result is not None:
                task_result.claim(self.worker.worker_id)
        if task_result is None:
            return False
        self.worker.run_task(task_result)
        close_old_connections()
        return True

    def _wait(self, seconds: float) -> None:
        """Wait for a notice, ``seconds`` at most, in slices: a signal does not cut a wait short."""
        deadline = time.monotonic() + seconds
        while not self.stopping and (remaining := deadline - time.monotonic()) > 0:
            if self.listener is None:
                time.sleep(min(remaining, STOP_CHECK_SECONDS))
            elif self.listener.wait(min(remaining, STOP_CHECK_SECONDS)):
                return


class SourceRunner:
    """Apply the due items of work sources in a thread beside the task worker.

    ``sources`` defaults to all of ``WORKER_SOURCES``; the worker gives each
    runner one, so each source has a thread (and never waits for another's
    item: a hung mail server holds back emails only). Its own database
    connection (Django's are per thread) and its own listener: it applies
    items until none is due, then waits for a notice or ``poll_seconds``.
    """

    def __init__(
        self,
        *,
        sources: Sequence[Callable[[], bool]] | None = None,
        poll_seconds: float = POLL_SECONDS,
        listen: bool = True,
    ) -> None:
        self.sources = list(work_sources() if sources is None else sources)
        self.poll_seconds = poll_seconds
        self.listen = listen

    def run(self, stop: threading.Event) -> None:
        listener = Listener() if self.listen else None
        try:
            while not stop.is_set():
                try:
                    while not stop.is_set() and self.run_source():
                        pass
                except DatabaseError as error:
                    logger.warning(
                        "work sources lost the database; retrying",
                        extra={
                            "sources": [_path(source) for source in self.sources],
                            "error": _first_line(error),
                            "retry_seconds": RETRY_SECONDS,
                        },
                    )
                    connection.close()
                    stop.wait(RETRY_SECONDS)
                    continue
                self._wait(stop, listener)
        finally:
            if listener is not None:
                listener.close()
            connection.close()

    def run_source(self) -> bool:
        """Apply one due item of the first work source that has one; False if none had."""
        close_old_connections()
        for source in self.sources:
            try:
                if source():
                    return True
            except DatabaseError:
                raise  # the loop's outage handling
            except Exception:
                # A source records its items' failures itself; this is a bug in the source.
                # Logged, and the thread goes on with the other sources.
                logger.exception("work source failed", extra={"source": _path(source)})
        return False

    def _wait(self, stop: threading.Event, listener: Listener | None) -> None:
        """Wait for a notice, ``poll_seconds`` at most, in slices that notice ``stop``."""
        deadline = time.monotonic() + self.poll_seconds
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            if listener is None:
                stop.wait(min(remaining, STOP_CHECK_SECONDS))
            elif listener.wait(min(remaining, STOP_CHECK_SECONDS)):
                return


def _path(function: Callable[[], bool]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def _keep_connections() -> None:
    """Reuse a connection across tasks: without it, every poll and task connects anew.

    The web server closes its connections after each request (or lends them from
    a pool); the worker is one long-lived process, so it keeps its own open,
    as DB_CONN_MAX_AGE would. Before the first connection of any thread is made.
    """
    for alias in settings.DATABASES:
        database = connections[alias].settings_dict
        if not database.get("CONN_MAX_AGE"):
            database["CONN_MAX_AGE"] = WORKER_CONN_MAX_AGE


def _install_stop_handlers(worker: DatabaseWorker) -> None:
    """SIGTERM/SIGINT set a flag the worker's loop reads (a handler takes no locks)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if worker.stopping and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: abandon the running task
        if not worker.stopping:
            logger.info(
                "worker stopping after the running task",
                extra={"signal": signal.Signals(signum).name},
            )
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _run_rq_worker(worker_id: str) -> None:
    """RQ's worker on the configured queues; it handles SIGTERM/SIGINT itself (warm shutdown)."""
    from django_rq.workers import get_worker

    worker = get_worker(*settings.RQ_QUEUES, job_class="django_tasks_rq.Job", name=worker_id)
    # RQ forks a process per job: it must not inherit (and share) this one's connection.
    connections.close_all()
    # The line `quickscale up` waits for, as the database worker's.
    logger.info("task worker started", extra={"worker_id": worker_id, "backend": "rq"})
    worker.work(with_scheduler=True, logging_level=settings.LOG_LEVEL)


def serve(
    *,
    worker_id: str,
    scheduler: bool = True,
    poll_seconds: float = POLL_SECONDS,
    listen: bool = True,
) -> None:
    """Run the task worker (main thread), the scheduler and each work source (threads) until
    told to stop."""
    _keep_connections()
    stop_threads = threading.Event()
    threads = []
    if scheduler:
        threads.append(
            threading.Thread(
                target=Scheduler(holder=worker_id).run,
                args=(stop_threads,),
                name="scheduler",
                daemon=True,  # never keeps a process that must end alive
            )
        )
    for source in work_sources():
        runner = SourceRunner(sources=[source], poll_seconds=poll_seconds, listen=listen)
        threads.append(
            threading.Thread(
                target=runner.run,
                args=(stop_threads,),
                name=f"work-source:{_path(source)}",
                daemon=True,
            )
        )
    try:
        if settings.TASK_BACKEND == "rq":
            for thread in threads:
                thread.start()
            _run_rq_worker(worker_id)
        else:
            worker = DatabaseWorker(worker_id=worker_id, poll_seconds=poll_seconds, listen=listen)
            _install_stop_handlers(worker)
            for thread in threads:
                thread.start()
            worker.run()
    finally:
        stop_threads.set()
        _join(threads)


def _join(threads: list[threading.Thread]) -> None:
    """Wait for the threads told to stop: the scheduler up to its own limit, the work
    sources' threads together up to theirs (each stops after its item, if it ends in time)."""
    start = time.monotonic()
    for thread in threads:
        limit = SCHEDULER_JOIN_SECONDS if thread.name == "scheduler" else SOURCES_JOIN_SECONDS
        if thread.is_alive():
            thread.join(max(start + limit - time.monotonic(), 0))
