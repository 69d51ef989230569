"""The services app's tasks, run from the real queue as a worker runs them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from common.testing.tasks import run_queued_tasks
from credits import ledger
from services import tasks
from services.models import Job, ServiceUsage
from services.usage import usage_start

pytestmark = pytest.mark.django_db


def test_sweep_job_leases_requeues_a_job_whose_worker_died(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=1)

    class WorkerKilled(BaseException):
        """Not caught by the runner, as a SIGKILL is not."""

    def worker_killed(context, unit):
        raise WorkerKilled()

    counting_service.on_unit = worker_killed
    run_queued_tasks()
    counting_service.on_unit = None
    # A minute later, the dead run's lease has lapsed.
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    tasks.sweep_job_leases.enqueue()

    # The sweep puts the job back in the queue and, on the database backend, its task
    # in the same transaction: the worker's batch runs the sweep, then the second run.
    assert run_queued_tasks() == 2

    job.refresh_from_db()
    assert (job.state, job.attempts) == ("succeeded", 2)
    assert ledger.balance(user).total == Decimal("8.50")


def test_reconcile_service_usage_fails_and_refunds_a_stale_call(
    user, fund, default_services, settings
):
    from services.models import Service

    fund(user, 5)
    usage, _ = usage_start(
        user,
        Service.objects.get(name="text_sentiment_analysis"),
        origin="web",
        summary="",
        charge=True,
    )
    ServiceUsage.objects.filter(pk=usage.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.SERVICE_CALL_TIMEOUT_SECONDS + 1)
    )
    tasks.reconcile_service_usage.enqueue()

    run_queued_tasks()

    assert ServiceUsage.objects.get().status == "failed"
    assert ledger.balance(user).total == Decimal("5.00")
