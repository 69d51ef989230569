"""Queued emails through the real `manage.py worker` process: its email thread sends, retries
once the next attempt is due, sends once, wakes on the outbox row's notice, and needs no job
on the RQ backend.

The other tests of the outbox play the worker's email thread in their own connection.
Marked ``transaction=True``: the worker, another process, sees only committed rows.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from rq import Queue

from common.mail_tasks import email_queue
from common.models import QueuedEmail
from common.testing.mail import FakeSMTPServer, fake_smtp_server
from common.testing.process import run_python
from common.tests import sample_emails
from common.tests.test_worker import eventually, rq_redis, worker, worker_env  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = """\
from core.settings import *  # noqa: F403

PERIODIC_TASKS = {{}}
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = {port}
EMAIL_USE_TLS = False
EMAIL_HOST_USER = ""
EMAIL_HOST_PASSWORD = ""
EMAIL_TIMEOUT = {timeout}
EMAIL_RETRY_SECONDS = 1
"""


def mail_worker_env(
    tmp_path: Path, smtp: FakeSMTPServer, *, timeout: int = 5, **extra: str
) -> dict[str, str]:
    """A worker's environment whose emails go to ``smtp`` (silence gives up after ``timeout``
    s), with no periodic tasks."""
    (tmp_path / "mail_worker_settings.py").write_text(
        SETTINGS.format(port=smtp.port, timeout=timeout)
    )
    env = worker_env(
        tmp_path, DJANGO_SETTINGS_MODULE="mail_worker_settings", PYTHONPATH=str(tmp_path)
    )
    env.update(extra)
    return env


def started(log: Path) -> bool:
    return "task worker started" in log.read_text()


def test_the_worker_process_retries_a_refused_email_and_sends_it_once(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with fake_smtp_server() as smtp:
        smtp.script = ["busy"]
        env = mail_worker_env(tmp_path, smtp)
        # Outside any transaction: committed at once.
        email = email_queue(sample_emails.notice, address="eve@example.com")

        with worker(env, log) as process:
            eventually(lambda: bool(smtp.messages), "email delivered", process, log)
            eventually(
                lambda: QueuedEmail.objects.get(pk=email.pk).state == "sent",
                "email marked sent",
                process,
                log,
            )

        assert smtp.connections == 2  # refused once (421), then accepted
        assert [m["To"] for m in smtp.messages] == ["eve@example.com"]
        email.refresh_from_db()
        assert email.attempts == 2


def test_an_idle_worker_sends_an_email_as_soon_as_it_is_queued(tmp_path: Path) -> None:
    """Polling once a minute: only the outbox row's notice can make it this quick."""
    log = tmp_path / "worker.log"
    with fake_smtp_server() as smtp:
        env = mail_worker_env(tmp_path, smtp)
        with worker(env, log, "--poll-seconds", "60") as process:
            eventually(lambda: started(log), "a started worker", process, log)
            time.sleep(0.5)  # past its first look: it waits on its notice now

            email_queue(sample_emails.notice, address="eve@example.com")
            queued = time.monotonic()
            eventually(lambda: bool(smtp.messages), "email delivered", process, log)
            assert time.monotonic() - queued < 10


def test_on_rq_the_worker_sends_an_email_that_sent_no_job_to_redis(
    tmp_path: Path,
    rq_redis: str,  # noqa: F811  (the fixture imported above)
) -> None:
    log = tmp_path / "worker.log"
    with fake_smtp_server() as smtp:
        env = mail_worker_env(tmp_path, smtp, TASK_BACKEND="rq", REDIS_URL=rq_redis)
        # The rq backend adds django_rq's apps, whose migrations bootstrap would apply.
        migrated = run_python(["manage.py", "migrate", "--verbosity", "0"], env)
        assert migrated.returncode == 0, migrated.stderr
        with worker(env, log, "--poll-seconds", "60") as process:
            eventually(lambda: started(log), "a started worker", process, log)
            time.sleep(0.5)
            # Queued by a process whose task backend is RQ, as a request there would.
            queue = (
                "from common.mail_tasks import email_queue; from common.tests import "
                "sample_emails; email_queue(sample_emails.notice, address='eve@example.com')"
            )
            done = run_python(["manage.py", "shell", "-c", queue], env)
            assert done.returncode == 0, done.stderr

            eventually(lambda: bool(smtp.messages), "email delivered", process, log)

        connection = redis.Redis.from_url(rq_redis)
        try:
            assert list(connection.scan_iter("rq:job:*")) == []  # no job was ever made
            assert Queue("default", connection=connection).count == 0
        finally:
            connection.close()
    assert QueuedEmail.objects.get().state == "sent"
