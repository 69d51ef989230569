"""A queued email through the real `manage.py worker` process and a mail server that refuses first.

The other tests of the queue play the worker in their own connection; this one
shows the worker process itself sends, retries after ``run_after`` and sends once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.mail_tasks import email_queue
from common.models import QueuedEmail
from common.testing.mail import fake_smtp_server
from common.tests import sample_emails
from common.tests.test_worker import eventually, worker, worker_env

SETTINGS = """\
from core.settings import *  # noqa: F403

PERIODIC_TASKS = {{}}
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = {port}
EMAIL_USE_TLS = False
EMAIL_HOST_USER = ""
EMAIL_HOST_PASSWORD = ""
EMAIL_TIMEOUT = 5
EMAIL_RETRY_SECONDS = 1
"""


@pytest.mark.django_db(transaction=True)
def test_the_worker_process_retries_a_refused_email_and_sends_it_once(tmp_path: Path) -> None:
    """transaction=True: the worker, another process, sees only committed rows."""
    log = tmp_path / "worker.log"
    with fake_smtp_server() as smtp:
        smtp.script = ["busy"]
        (tmp_path / "mail_worker_settings.py").write_text(SETTINGS.format(port=smtp.port))
        env = worker_env(
            tmp_path, DJANGO_SETTINGS_MODULE="mail_worker_settings", PYTHONPATH=str(tmp_path)
        )
        # Outside any transaction: committed at once, its task enqueued at once.
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
