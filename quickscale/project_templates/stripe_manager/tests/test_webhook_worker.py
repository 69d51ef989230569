"""`manage.py worker` itself applies what the webhook stored, woken by the stored row, in a
thread of its own beside the task it runs.

Marked ``transaction=True``: the worker is another connection and must see what
the test commits, and the test must see what it commits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from common.testing.database import session_database_url
from common.testing.process import PROJECT_ROOT
from common.tests.test_worker import rq_redis  # noqa: F401  (a fixture)
from stripe_manager.tests.factories import balance, event_processed, post_signed, purchase_completed

pytestmark = pytest.mark.django_db(transaction=True)

# Far longer than the test waits: an event applied sooner was woken by its notice.
POLL_SECONDS = "60"


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Path]:
    """A running `manage.py worker` (no scheduler); yields its log file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DJANGO_"))}
    env["DATABASE_URL"] = session_database_url()
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "worker",
                "--no-scheduler",
                "--poll-seconds",
                POLL_SECONDS,
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_start(log_path)
        # Its first look found nothing; it now waits on its notice (or the long poll).
        time.sleep(0.5)
        yield log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_for(condition: Callable[[], bool], what: str, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; worker output:\n{log.read_text()}")
        time.sleep(0.05)


def wait_for_start(log: Path) -> None:
    wait_for(lambda: b"task worker started" in log.read_bytes(), "its start", log)


def post_and_see_it_applied_at_once(client: Client, event: dict[str, Any], log: Path) -> None:
    """POST ``event``; the running worker applies it within three seconds, whatever else it is
    busy with (``log`` is its output, shown if it does not)."""
    assert post_signed(client, event) == 200
    stored = time.monotonic()
    wait_for(lambda: event_processed(event), "the event applied", log, timeout=10)
    assert time.monotonic() - stored < 3


def test_the_worker_applies_a_stored_event_as_soon_as_it_is_stored(
    client, customer, catalog, worker
):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200

    wait_for(lambda: event_processed(event), "the event applied", worker)
    assert balance(customer.user)[2] == 100


def test_a_stored_event_is_applied_while_the_only_worker_runs_a_long_task(
    client, customer, catalog, worker
):
    """Events have a thread of their own: a ten-minute job must not hold a purchase back."""
    from django_tasks_db.models import DBTaskResult

    from common.tests.worker_tasks import slow_echo

    long_task = slow_echo.enqueue(15, "done")
    wait_for(
        lambda: DBTaskResult.objects.get(id=long_task.id).status == "RUNNING",
        "the long task running",
        worker,
    )
    post_and_see_it_applied_at_once(client, purchase_completed(customer, catalog["pack"]), worker)
    assert balance(customer.user)[2] == 100
    assert DBTaskResult.objects.get(id=long_task.id).status == "RUNNING"  # still at it


def test_on_rq_a_stored_event_is_applied_while_the_only_worker_runs_a_long_job(
    client,
    customer,
    catalog,
    tmp_path,
    rq_redis,  # noqa: F811  (the fixture imported above)
):
    """RQ's worker runs one job at a time too: its process applies events in its own thread."""
    import redis
    from rq import Queue

    from common.testing.process import run_python
    from common.tests.test_worker import worker as rq_worker
    from common.tests.test_worker import worker_env

    log = tmp_path / "rq-worker.log"
    env = worker_env(tmp_path, periodic={}, TASK_BACKEND="rq", REDIS_URL=rq_redis)
    migrated = run_python(["manage.py", "migrate", "--verbosity", "0"], env)
    assert migrated.returncode == 0, migrated.stderr
    connection = redis.Redis.from_url(rq_redis)
    with rq_worker(env, log, "--poll-seconds", POLL_SECONDS):
        wait_for_start(log)
        enqueue = "from common.tests.worker_tasks import slow_echo; slow_echo.enqueue(15, 'x')"
        assert run_python(["manage.py", "shell", "-c", enqueue], env).returncode == 0
        started = Queue("default", connection=connection).started_job_registry
        wait_for(lambda: started.count == 1, "the long job running", log)

        # Stored by the endpoint (this test's settings queue in PostgreSQL: no RQ job for it).
        post_and_see_it_applied_at_once(client, purchase_completed(customer, catalog["pack"]), log)
        assert started.count == 1  # the job is still running
    assert balance(customer.user)[2] == 100


def test_a_stored_event_is_applied_while_the_mail_server_hangs_the_worker_sending_an_email(
    client, customer, catalog, tmp_path
):
    """Each work source has a thread of its own: a mail server that says nothing until
    EMAIL_TIMEOUT must not hold a purchase back (nor the receipt it queues)."""
    from common.mail_tasks import email_queue
    from common.models import QueuedEmail
    from common.testing.mail import fake_smtp_server
    from common.tests import sample_emails
    from common.tests.test_mail_worker import mail_worker_env
    from common.tests.test_worker import worker as mail_worker

    log = tmp_path / "worker.log"
    with fake_smtp_server() as smtp:
        smtp.script = ["hang"]
        env = mail_worker_env(tmp_path, smtp, timeout=60)
        with mail_worker(env, log, "--no-scheduler", "--poll-seconds", POLL_SECONDS):
            try:
                wait_for_start(log)
                stuck = email_queue(sample_emails.notice, address="eve@example.com")
                wait_for(lambda: smtp.connections == 1, "the email's send hanging", log)

                post_and_see_it_applied_at_once(
                    client, purchase_completed(customer, catalog["pack"]), log
                )
                stuck.refresh_from_db()
                assert (stuck.state, stuck.claimed_until is not None) == ("pending", True)
                assert smtp.messages == []  # still hanging on the first email
            finally:
                smtp.release()  # the send fails at once; the worker stops without waiting
            # Freed, the email thread goes on to the receipt the purchase queued.
            wait_for(
                lambda: QueuedEmail.objects.filter(
                    key__startswith="receipt:", state="sent"
                ).exists(),
                "the receipt sent",
                log,
            )
    assert balance(customer.user)[2] == 100
