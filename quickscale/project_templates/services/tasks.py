"""The services app's background tasks (django-tasks); each carries ids or nothing.

``run_job`` runs one job (``services/jobs.py``); a worker picks it from the
queue ``enqueue_job`` put it on. The other two are periodic: the scheduler
(``common``) enqueues them by their dotted names, listed in settings.
"""

from __future__ import annotations

from django_tasks import task

from services import jobs
from services.usage import usage_reconcile_stale


@task()
def run_job(job_id: str) -> None:
    """Run the job ``job_id`` if it is still queued (a repeated delivery runs nothing)."""
    jobs.run_job(job_id)


@task()
def sweep_job_leases() -> int:
    """Requeue or fail the jobs whose worker stopped; return how many changed."""
    return jobs.sweep_lapsed_leases()


@task()
def reconcile_service_usage() -> int:
    """Fail and refund direct calls whose end was never recorded; return how many."""
    return usage_reconcile_stale()
