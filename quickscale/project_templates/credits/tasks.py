"""The credits app's periodic tasks: the scheduler (``common.scheduler``) enqueues them by path.

Each wraps what the app already does on demand, so a task and its command
(for cron or a manual run) can never differ; all three are idempotent, so a
run that overlaps a manual one changes nothing twice. PERIODIC_TASKS in
settings says how often each runs.
"""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django_tasks import task

from credits import ledger


@task()
def expire_credits() -> int:
    """Write the expiry entries of lots past their date (``manage.py expire_credits``)."""
    return ledger.expire()


@task()
def send_credit_reminders() -> str:
    """Email users whose credits expire soon, once per lot (``manage.py send_credit_reminders``)."""
    output = StringIO()
    call_command("send_credit_reminders", stdout=output)
    return output.getvalue().strip()


@task()
def release_expired_holds() -> int:
    """Release the holds whose expiry passed (a crashed job's), so no credits stay locked."""
    return ledger.release_expired_holds()
