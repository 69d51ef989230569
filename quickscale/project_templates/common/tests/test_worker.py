"""`manage.py worker` as a real process: start-up checks, tasks, the scheduler, shutdown.

Each test starts the command as a subprocess on the session's database, as
`quickscale up` and the Docker image start it. Tests where the worker must see
rows this test wrote use ``transaction=True`` (committed rows), and stop the
worker before the test's tables are flushed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from django_tasks_db.models import DBTaskResult

from common.models import SchedulerLease
from common.testing.database import session_database_url
from common.testing.outage import database_outage
from common.testing.process import PROJECT_ROOT, run_python
from common.tests import worker_tasks

TEST_RQ_REDIS_URL = os.environ.get("TEST_RQ_REDIS_URL", "redis://127.0.0.1:6379/14")
WAIT_SECONDS = 60
# Settings of a worker whose scheduler runs the test tasks, not the project's work.
TEST_SETTINGS = """\
from core.settings import *  # noqa: F403

PERIODIC_TASKS = {periodic!r}
"""


def worker_env(
    tmp_path: Path, *, periodic: dict[str, int] | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a worker process: this session's database, the given settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DJANGO_"))}
    env["DATABASE_URL"] = session_database_url()
    env["TASK_BACKEND"] = "database"
    env["LOG_LEVEL"] = "INFO"
    if periodic is not None:
        (tmp_path / "worker_test_settings.py").write_text(TEST_SETTINGS.format(periodic=periodic))
        env["PYTHONPATH"] = str(tmp_path)
        env["DJANGO_SETTINGS_MODULE"] = "worker_test_settings"
    env.update(extra)
    return env


@contextmanager
def worker(env: dict[str, str], log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A running `manage.py worker ARGS`; stopped (killed if need be) when the block ends."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "worker", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def eventually(check: Callable[[], bool], what: str, process: Any = None, log: Any = None) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the worker exited ({process.returncode}) before {what}:\n{log_text(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {WAIT_SECONDS} s:\n{log_text(log)}")
        time.sleep(0.05)


def log_text(log: Path | None) -> str:
    return log.read_text(errors="replace")[-4000:] if log and log.exists() else "(no log)"


def status(result_id: Any) -> str:
    return str(DBTaskResult.objects.get(id=result_id).status)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


# Start-up checks: one line saying what to do, nothing started.


def test_a_worker_started_without_a_database_exits_with_one_clear_line(tmp_path: Path) -> None:
    env = worker_env(tmp_path, DATABASE_URL="postgres://nobody@127.0.0.1:1/none")

    done = run_python(["manage.py", "worker"], env, timeout=60)

    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("CommandError: Cannot reach the database (")
    assert "Start PostgreSQL" in lines[0] and "DATABASE_URL" in lines[0]


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database on the session's server with no tables, dropped afterwards."""
    url = session_database_url()
    name = f"test_worker_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db
def test_a_worker_on_a_database_not_migrated_yet_says_to_run_bootstrap(
    tmp_path: Path, empty_database: str
) -> None:
    done = run_python(["manage.py", "worker"], worker_env(tmp_path, DATABASE_URL=empty_database))

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "unapplied migrations. Run `python manage.py bootstrap` first" in lines[0]


@pytest.mark.django_db
def test_a_worker_whose_periodic_task_does_not_exist_exits_with_one_clear_line(
    tmp_path: Path,
) -> None:
    env = worker_env(tmp_path, periodic={"credits.tasks.no_such_task": 60})

    done = run_python(["manage.py", "worker"], env)

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "PERIODIC_TASKS names 'credits.tasks.no_such_task'" in lines[0]


# Running tasks and stopping.


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_queued_tasks_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with worker(worker_env(tmp_path, periodic={}), log, "--worker-id", "probe") as process:
        first = worker_tasks.echo.enqueue("first")
        second = worker_tasks.echo.enqueue("second")
        eventually(
            lambda: {status(first.id), status(second.id)} == {"SUCCESSFUL"},
            "both tasks done",
            process,
            log,
        )
        assert stop(process) == 0
    assert first.id != second.id
    assert DBTaskResult.objects.get(id=first.id).return_value == "first"
    assert DBTaskResult.objects.get(id=first.id).worker_ids == ["probe"]
    text = log.read_text()
    # Structured lines, as the web process writes them (key=value in development).
    assert "common.task_worker: task worker started worker_id='probe' backend='database'" in text
    assert "common.task_worker: task worker stopped worker_id='probe'" in text
    assert "Traceback" not in text


@pytest.mark.django_db(transaction=True)
def test_sigterm_lets_the_running_task_finish_before_the_worker_stops(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with worker(worker_env(tmp_path, periodic={}), log) as process:
        result = worker_tasks.slow_echo.enqueue(2, "finished")
        eventually(lambda: status(result.id) == "RUNNING", "the task running", process, log)
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGTERM)  # a supervisor's and the group's: still graceful
        assert process.wait(30) == 0
    done = DBTaskResult.objects.get(id=result.id)
    assert (done.status, done.return_value) == ("SUCCESSFUL", "finished")


@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_starts_a_new_task_when_it_is_enqueued_not_at_its_next_poll(
    tmp_path: Path,
) -> None:
    log = tmp_path / "worker.log"
    env = worker_env(tmp_path, periodic={})
    with worker(env, log, "--poll-seconds", "3600") as process:
        eventually(lambda: "task worker started" in log.read_text(), "a started worker", process)
        eventually(lambda: not DBTaskResult.objects.exists(), "an idle worker")  # polled once
        time.sleep(0.5)
        result = worker_tasks.echo.enqueue("woken")
        eventually(lambda: status(result.id) == "SUCCESSFUL", "the task done", process, log)


@pytest.mark.django_db(transaction=True)
def test_without_notices_an_idle_worker_finds_a_task_at_its_next_poll(tmp_path: Path) -> None:
    """--no-listen (for PgBouncer in transaction mode): polling alone, nothing woken."""
    log = tmp_path / "worker.log"
    env = worker_env(tmp_path, periodic={})
    with worker(env, log, "--no-listen", "--poll-seconds", "3600") as process:
        eventually(lambda: "task worker started" in log.read_text(), "a started worker", process)
        time.sleep(0.5)  # past its first poll
        result = worker_tasks.echo.enqueue("unseen")
        time.sleep(3)
        assert status(result.id) == "READY"
        assert stop(process) == 0


@pytest.mark.django_db(transaction=True)
def test_the_worker_outlives_a_database_outage_and_runs_tasks_after_it(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with worker(worker_env(tmp_path, periodic={}), log, "--poll-seconds", "0.2") as process:
        eventually(lambda: "task worker started" in log.read_text(), "a started worker", process)
        with database_outage():
            eventually(lambda: "task worker lost the database" in log.read_text(), "a lost db")
            time.sleep(1)  # a few retries against a database that refuses
        assert process.poll() is None, log_text(log)
        result = worker_tasks.echo.enqueue("after the outage")
        eventually(lambda: status(result.id) == "SUCCESSFUL", "the task done", process, log)


@pytest.mark.django_db(transaction=True)
def test_two_workers_started_together_schedule_each_periodic_run_once(tmp_path: Path) -> None:
    beat, other = "common.tests.worker_tasks.beat", "common.tests.worker_tasks.other_beat"
    env = worker_env(tmp_path, periodic={beat: 3600, other: 3600})
    logs = [tmp_path / "first.log", tmp_path / "second.log"]

    def runs() -> Counter[str]:
        return Counter(DBTaskResult.objects.values_list("task_path", flat=True))

    with worker(env, logs[0]) as first, worker(env, logs[1]) as second:
        eventually(
            lambda: DBTaskResult.objects.filter(status="SUCCESSFUL").count() >= 2,
            "both periodic tasks run",
            first,
            logs[0],
        )
        # Both started, stop handlers installed (on a busy machine one may still be
        # starting while the other ran both tasks: SIGTERM would then kill it outright).
        eventually(
            lambda: all("task worker started" in log_text(log) for log in logs),
            "both workers started",
        )
        time.sleep(1)  # ticks of both schedulers after the first
        # Both at once: the lease the first gives up is not taken by the second meanwhile.
        first.send_signal(signal.SIGTERM)
        second.send_signal(signal.SIGTERM)
        assert (first.wait(30), second.wait(30)) == (0, 0)

    assert runs() == {beat: 1, other: 1}
    holders = [log.read_text().count("scheduler lease taken") for log in logs]
    assert sorted(holders) == [0, 1], [log_text(log) for log in logs]
    assert not SchedulerLease.objects.exists()  # given up on the way out


@pytest.fixture
def rq_redis() -> Iterator[str]:
    """The RQ worker test's Redis database, with no RQ keys in it before or after.

    Two test runs on one machine (a CI run beside a README check) share this
    database and RQ's "default" queue, so the test runs under a lock in Redis: one
    run at a time, each removing only RQ's keys (a FLUSHDB by one run had wiped the
    job the other was reading).
    """
    client = redis.Redis.from_url(TEST_RQ_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"The RQ worker test needs Redis at {TEST_RQ_REDIS_URL} ({error}).")
    lock = client.lock("quickscale-tests:rq-worker", timeout=300, blocking_timeout=300)
    if not lock.acquire():
        pytest.fail(f"Another test run kept the RQ worker test's lock in {TEST_RQ_REDIS_URL}.")

    def remove_rq_keys() -> None:
        for key in client.scan_iter("rq:*"):
            client.delete(key)

    try:
        remove_rq_keys()
        yield TEST_RQ_REDIS_URL
        remove_rq_keys()
    finally:
        lock.release()
        client.close()


ENQUEUE_AND_WAIT = """
import time
from common.tests.worker_tasks import echo
result = echo.enqueue("through redis")
deadline = time.monotonic() + 60
while result.status not in ("SUCCESSFUL", "FAILED") and time.monotonic() < deadline:
    time.sleep(0.1)
    result.refresh()
print(result.status, result.return_value)
"""


@pytest.mark.django_db(transaction=True)
def test_the_rq_worker_runs_tasks_queued_in_redis(tmp_path: Path, rq_redis: str) -> None:
    log = tmp_path / "worker.log"
    env = worker_env(tmp_path, periodic={}, TASK_BACKEND="rq", REDIS_URL=rq_redis)
    # The rq backend adds django_rq's apps, whose migrations bootstrap would apply.
    migrated = run_python(["manage.py", "migrate", "--verbosity", "0"], env)
    assert migrated.returncode == 0, migrated.stderr
    with worker(env, log) as process:
        done = run_python(["manage.py", "shell", "-c", ENQUEUE_AND_WAIT], env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "SUCCESSFUL through redis", log_text(log)
        assert stop(process) == 0, log_text(log)
