"""Background jobs: enqueue holds, a run settles once, cancel, and the lease sweep.

The queue is the real one (django-tasks-db's table); ``run_queued_tasks``
plays the worker in the test's connection. A worker killed mid-job is played
by a hook that raises a ``BaseException`` (the runner does not catch it, as
it could not catch a SIGKILL): the job is left running with its lease, as a
dead worker leaves it. ``test_job_worker.py`` kills a real worker process.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from common.testing.tasks import queued_task_names, run_queued_tasks
from credits import ledger
from credits.exceptions import InsufficientCredits
from credits.models import LedgerEntry
from credits.tests.factories import assert_invariants, ledger_state
from services import selectors as service_selectors
from services import tasks
from services.base import BaseService
from services.exceptions import (
    JobAlreadyFinished,
    JobNotFound,
    JobNotSupported,
    ServiceInputError,
    ServiceRunsAsJob,
    ServiceUnavailable,
    TooManyActiveJobs,
)
from services.jobs import (
    REENQUEUE_AFTER,
    JobContext,
    cancel_job,
    enqueue_job,
    run_job,
    sweep_lapsed_leases,
)
from services.models import Job, Service, ServiceUsage
from services.registry import create_service_instance, register_service
from services.tests.factories import png_bytes
from users.models import CustomUser
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

RUN_JOB = "services.tasks.run_job"


class WorkerKilled(BaseException):
    """Stands for the worker dying mid-job: nothing in the runner catches it."""


def consumes(job: Job) -> list[Decimal]:
    return list(LedgerEntry.objects.filter(key=job.hold_key).values_list("amount", flat=True))


def refreshed(job: Job) -> Job:
    job.refresh_from_db()
    return job


def kill_at(unit: int):
    def hook(job, n):
        if n == unit:
            raise WorkerKilled()

    return hook


def lapse(job: Job) -> datetime:
    """A moment after the job's lease ran out."""
    lease = refreshed(job).lease_expires_at
    assert lease is not None, "the job holds no lease"
    return lease + timedelta(seconds=1)


# --------------------------------------------------------------------------- enqueue


def test_enqueue_holds_the_maximum_cost_and_queues_the_task(user, fund, counting_service, enqueue):
    fund(user, 10)

    job = enqueue(counting_service.service, user, items=4)

    assert (job.state, job.credits_held, job.units_billable) == ("queued", Decimal("6.00"), 4)
    assert job.hold_key == f"job:{job.pk}"
    balance = ledger.balance(user)
    assert (balance.total, balance.reserved, balance.available) == (
        Decimal("10.00"),
        Decimal("6.00"),
        Decimal("4.00"),
    )
    assert queued_task_names() == [RUN_JOB]
    assert consumes(job) == [] and counting_service.runs == 0
    assert job.inputs == {"items": 4, "fail_at": 0}


def test_the_hold_expires_after_the_longest_wait_and_run(
    user, fund, counting_service, enqueue, settings
):
    settings.JOB_MAX_QUEUE_WAIT_SECONDS = 100
    fund(user, 10)
    before = timezone.now()

    job = enqueue(counting_service.service, user, items=1)

    # 100 s of queue wait + the service's 60 s max_run_seconds
    assert (
        before + timedelta(seconds=160) <= job.expires_at <= timezone.now() + timedelta(seconds=160)
    )


def test_enqueue_without_enough_credits_writes_nothing(user, fund, counting_service, enqueue):
    fund(user, 5)
    before = ledger_state()

    with pytest.raises(InsufficientCredits):
        enqueue(counting_service.service, user, items=4)

    assert ledger_state() == before
    assert not Job.objects.exists() and queued_task_names() == []


def test_enqueue_refuses_bad_input_and_holds_nothing(user, fund, counting_service, enqueue):
    fund(user, 10)
    before = ledger_state()

    with pytest.raises(ServiceInputError) as refused:
        enqueue(counting_service.service, user, items=0)

    assert "items" in refused.value.details
    assert ledger_state() == before
    assert not Job.objects.exists() and queued_task_names() == []


def test_enqueue_refuses_a_switched_off_service(user, fund, counting_service, enqueue):
    fund(user, 10)
    Service.objects.filter(name="test_counting_job").update(is_active=False)

    with pytest.raises(ServiceUnavailable):
        enqueue(counting_service.service, user, items=1)

    assert not Job.objects.exists() and ledger.balance(user).reserved == 0


def test_enqueue_refuses_a_service_whose_inputs_are_not_json(user, fund, default_services, enqueue):
    fund(user, 50)
    image = SimpleUploadedFile("a.png", png_bytes(), content_type="image/png")

    with pytest.raises(JobNotSupported):
        enqueue(create_service_instance("image_metadata_extractor"), user, image=image)

    assert not Job.objects.exists() and ledger.balance(user).reserved == 0


def test_enqueue_refuses_an_unknown_origin(user, fund, counting_service, enqueue):
    fund(user, 10)

    with pytest.raises(ValueError, match="origin"):
        enqueue(counting_service.service, user, origin="cron", items=1)

    assert not Job.objects.exists()


def test_a_normal_service_can_run_as_a_job_at_its_price(user, fund, default_services, enqueue):
    fund(user, 5)

    job = enqueue(create_service_instance("text_sentiment_analysis"), user, text="I love it")
    assert job.credits_held == Decimal("1.00")
    run_queued_tasks()

    job = refreshed(job)
    assert job.result is not None and job.result["label"] == "positive"
    assert (job.state, job.credits_charged) == ("succeeded", Decimal("1.00"))
    assert ledger.balance(user).total == Decimal("4.00")


def test_a_long_running_service_is_refused_by_run_and_charges_nothing(user, fund, counting_service):
    fund(user, 10)
    before = ledger_state()

    with pytest.raises(ServiceRunsAsJob):
        counting_service.service.run(user, items=1)

    assert ledger_state() == before and not ServiceUsage.objects.exists()


# --------------------------------------------------------------------------- run


def test_a_job_is_charged_for_the_units_it_processed(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, origin="api", items=4)

    assert run_queued_tasks() == 1

    job = refreshed(job)
    assert (job.state, job.progress, job.progress_message) == ("succeeded", 100, "4 of 4")
    assert (job.attempts, job.units_processed, job.credits_charged) == (1, 4, Decimal("6.00"))
    assert job.result == {"done": 4} and job.error == ""
    assert job.started_at and job.finished_at and job.lease_expires_at is None
    assert consumes(job) == [Decimal("-6.00")]
    balance = ledger.balance(user)
    assert (balance.total, balance.reserved) == (Decimal("4.00"), Decimal("0.00"))
    usage = ServiceUsage.objects.get()
    assert (usage.status, usage.origin, usage.credits_charged) == (
        "succeeded",
        "api",
        Decimal("6.00"),
    )
    assert usage.ledger_entry is not None and usage.ledger_entry.key == job.hold_key
    assert_invariants(user)


def test_a_failed_job_releases_its_hold(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=4, fail_at=3)

    run_queued_tasks()

    job = refreshed(job)
    assert job.state == "failed" and "model crashed" in job.error
    assert job.credits_charged == 0 and job.result is None
    assert consumes(job) == []
    balance = ledger.balance(user)
    assert (balance.total, balance.available) == (Decimal("10.00"), Decimal("10.00"))
    assert ServiceUsage.objects.get().status == "failed"
    assert_invariants(user)


def test_a_repeated_delivery_of_the_task_runs_the_job_once(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)
    tasks.run_job.enqueue(str(job.pk))  # the queue delivers it twice

    assert run_queued_tasks() == 2

    assert counting_service.runs == 1
    assert refreshed(job).attempts == 1
    assert consumes(job) == [Decimal("-3.00")]
    assert ledger.balance(user).total == Decimal("7.00")


def test_a_job_whose_service_was_switched_off_while_it_waited_fails_released(
    user, fund, counting_service, enqueue
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)
    Service.objects.filter(name="test_counting_job").update(is_active=False)

    run_queued_tasks()

    job = refreshed(job)
    assert job.state == "failed" and "switched off" in job.error
    assert counting_service.runs == 0 and consumes(job) == []
    assert ledger.balance(user).available == Decimal("10.00")
    assert_invariants(user)


def test_a_job_whose_hold_was_swept_fails_without_running(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)
    # The hold sweep of a clock past the hold's expiry (another server's, say).
    assert ledger.release_expired_holds(now=job.expires_at) == 1

    run_queued_tasks()

    job = refreshed(job)
    assert job.state == "failed" and "hold" in job.error
    assert counting_service.runs == 0 and consumes(job) == []
    assert ledger.balance(user).available == Decimal("10.00")


def test_a_free_job_touches_no_ledger(user, counting_service, enqueue, settings):
    settings.CREDIT_SYSTEM_ENABLED = False
    before = ledger_state()

    job = enqueue(counting_service.service, user, items=3)
    run_queued_tasks()

    job = refreshed(job)
    assert (job.state, job.hold_key, job.credits_charged) == ("succeeded", "", Decimal("0.00"))
    assert ledger_state() == before


def test_a_job_of_no_billable_units_succeeds_uncharged(user, fund, isolated_registry, enqueue):
    # A service may price some inputs at 0 units (an empty document, say): the job
    # is free, holds nothing and must still finish (not divide its hold by 0 units).
    @register_service("test_zero_unit_job")
    class ZeroUnits(BaseService):
        long_running = True

        def billable_units(self, cleaned: dict[str, Any]) -> int:
            return 0

        def execute_job(self, job: JobContext, **kwargs: Any) -> dict[str, Any]:
            return {"ok": True}

    Service.objects.create(name="test_zero_unit_job", credit_cost=Decimal("1.50"))
    fund(user, 10)
    before = ledger_state()

    job = enqueue(ZeroUnits(), user, text="nothing to price")
    run_queued_tasks()

    job = refreshed(job)
    assert (job.state, job.hold_key, job.credits_charged) == ("succeeded", "", Decimal("0.00"))
    assert job.result == {"ok": True} and job.attempts == 1
    assert ledger_state() == before
    assert ServiceUsage.objects.get().status == "succeeded"


# --------------------------------------------------------------------------- cancel


def test_cancelling_a_queued_job_releases_its_hold_and_it_never_runs(
    user, fund, counting_service, enqueue
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)

    cancelled = cancel_job(user, job.pk)
    run_queued_tasks()

    assert cancelled.state == "cancelled" and refreshed(job).state == "cancelled"
    assert counting_service.runs == 0 and consumes(job) == []
    assert ledger.balance(user).available == Decimal("10.00")
    assert_invariants(user)


def test_cancelling_a_running_job_stops_it_and_charges_what_it_processed(
    user, fund, counting_service, enqueue
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=5)

    def cancel_at_unit_2(context, unit):
        if unit == 2:
            assert cancel_job(user, str(job.pk)).cancel_requested

    counting_service.on_unit = cancel_at_unit_2
    run_queued_tasks()

    job = refreshed(job)
    assert job.state == "cancelled"
    # Units 1 and 2 were processed (the cancel came before unit 2's report).
    assert (job.units_processed, job.credits_charged) == (2, Decimal("3.00"))
    assert job.result == {"done": 2} and job.progress == 20
    assert consumes(job) == [Decimal("-3.00")]
    balance = ledger.balance(user)
    assert (balance.total, balance.reserved) == (Decimal("7.00"), Decimal("0.00"))
    usage = ServiceUsage.objects.get()
    assert (usage.status, usage.credits_charged) == ("cancelled", Decimal("3.00"))
    assert_invariants(user)


def test_cancelling_a_finished_job_is_refused(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=1)
    run_queued_tasks()

    with pytest.raises(JobAlreadyFinished):
        cancel_job(user, job.pk)

    job = refreshed(job)
    assert (job.state, job.cancel_requested) == ("succeeded", False)
    assert consumes(job) == [Decimal("-1.50")]


@pytest.mark.parametrize("whose", ["another user's", "missing", "not an id"])
def test_cancelling_a_job_that_is_not_the_users_is_not_found(
    whose, user, other_user, fund, counting_service, enqueue
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=1)
    caller, job_id = {
        "another user's": (other_user, job.pk),
        "missing": (user, "0b7d5bd4-8a3c-4c33-9d0e-6f0f0c2b1a11"),
        "not an id": (user, "../1"),
    }[whose]

    with pytest.raises(JobNotFound):
        cancel_job(caller, job_id)

    job = refreshed(job)
    assert (job.state, job.cancel_requested) == ("queued", False)
    assert ledger.balance(user).reserved == Decimal("1.50")


# --------------------------------------------------------------------------- leases


def test_a_job_whose_worker_died_is_retried_and_charged_once(
    user, fund, counting_service, enqueue, django_capture_on_commit_callbacks
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=3)
    counting_service.on_unit = kill_at(2)
    run_queued_tasks()
    assert refreshed(job).state == "running"  # as a dead worker leaves it

    counting_service.on_unit = None
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_lapsed_leases(lapse(job)) == 1
    assert refreshed(job).state == "queued" and queued_task_names() == [RUN_JOB]
    run_queued_tasks()

    job = refreshed(job)
    assert (job.state, job.attempts, job.credits_charged) == ("succeeded", 2, Decimal("4.50"))
    assert consumes(job) == [Decimal("-4.50")]
    assert ledger.balance(user).total == Decimal("5.50")
    assert_invariants(user)


def test_a_job_whose_worker_keeps_dying_fails_after_the_last_attempt_released(
    user, fund, counting_service, enqueue, settings, django_capture_on_commit_callbacks
):
    settings.JOB_MAX_ATTEMPTS = 2
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=3)
    counting_service.on_unit = kill_at(1)

    run_queued_tasks()
    with django_capture_on_commit_callbacks(execute=True):
        sweep_lapsed_leases(lapse(job))
    run_queued_tasks()
    assert refreshed(job).attempts == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_lapsed_leases(lapse(job)) == 1

    job = refreshed(job)
    assert job.state == "failed" and "stopped 2 times" in job.error
    assert queued_task_names() == [] and counting_service.runs == 2
    assert consumes(job) == [] and job.credits_charged == 0
    assert ledger.balance(user).available == Decimal("10.00")
    assert ServiceUsage.objects.get().status == "failed"
    assert_invariants(user)


def test_a_run_that_lost_its_lease_changes_nothing_and_the_retry_charges_once(
    user, fund, counting_service, enqueue, django_capture_on_commit_callbacks
):
    """A stalled worker whose job was swept and queued again finds out at its next report."""
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=3)

    def swept_while_stalled(context, unit):
        if unit == 2:
            counting_service.on_unit = None
            with django_capture_on_commit_callbacks(execute=True):
                assert sweep_lapsed_leases(lapse(job)) == 1

    counting_service.on_unit = swept_while_stalled
    run_queued_tasks()  # the first run stops at unit 2; the retry it enqueued runs all 3

    job = refreshed(job)
    assert (job.state, job.attempts, job.result) == ("succeeded", 2, {"done": 3})
    assert consumes(job) == [Decimal("-4.50")]
    assert ServiceUsage.objects.count() == 1
    assert_invariants(user)


def test_a_run_that_ends_after_its_job_was_taken_again_records_nothing(
    user, fund, counting_service, enqueue, django_capture_on_commit_callbacks
):
    """Only the run holding the job's current attempt records its outcome and charges."""
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)

    def taken_again_before_the_end(context):
        counting_service.before_return = None
        sweep_lapsed_leases(lapse(job))  # attempt 1 stalled: queued again
        counting_service.on_unit = kill_at(1)
        with pytest.raises(WorkerKilled):
            run_job(job.pk)  # attempt 2 takes it, then its worker dies
        counting_service.on_unit = None

    counting_service.before_return = taken_again_before_the_end
    run_queued_tasks()  # attempt 1 returns its result after all that

    job = refreshed(job)
    assert (job.state, job.attempts, job.result) == ("running", 2, None)
    assert consumes(job) == [] and ledger.balance(user).reserved == Decimal("3.00")
    assert not ServiceUsage.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        sweep_lapsed_leases(lapse(job))
    run_queued_tasks()
    assert refreshed(job).state == "succeeded" and consumes(job) == [Decimal("-3.00")]
    assert_invariants(user)


def test_a_job_whose_hold_expired_while_it_ran_fails_uncharged(
    user, fund, counting_service, enqueue
):
    """A run that outlived its hold (no report stopped it) must not charge credits now free."""
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)

    def hold_swept(context):
        assert ledger.release_expired_holds(now=job.expires_at) == 1

    counting_service.before_return = hold_swept
    run_queued_tasks()

    job = refreshed(job)
    assert job.state == "failed" and "expiry" in job.error
    assert (job.credits_charged, job.result) == (Decimal("0.00"), None)
    assert consumes(job) == [] and ledger.balance(user).available == Decimal("10.00")
    assert ServiceUsage.objects.get().status == "failed"


def test_a_report_past_the_deadline_stops_the_job_uncharged(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=3)

    def out_of_time(context, unit):
        if unit == 2:
            context.deadline = timezone.now()  # as if max_run_seconds had passed

    counting_service.on_unit = out_of_time
    run_queued_tasks()

    job = refreshed(job)
    assert job.state == "failed" and "time limit" in job.error
    assert consumes(job) == [] and ledger.balance(user).available == Decimal("10.00")


def test_the_sweep_leaves_live_leases_alone(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=3)

    def sweep_now(context, unit):
        assert sweep_lapsed_leases() == 0

    counting_service.on_unit = sweep_now
    run_queued_tasks()

    assert refreshed(job).state == "succeeded"


def test_a_lapsed_job_whose_owner_asked_to_cancel_is_cancelled_uncharged(
    user, fund, counting_service, enqueue
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=3)

    def cancel_then_die(context, unit):
        cancel_job(user, job.pk)
        raise WorkerKilled()

    counting_service.on_unit = cancel_then_die
    run_queued_tasks()
    assert sweep_lapsed_leases(lapse(job)) == 1

    job = refreshed(job)
    assert job.state == "cancelled" and consumes(job) == []
    assert ledger.balance(user).available == Decimal("10.00") and queued_task_names() == []


def test_a_queued_job_past_its_expiry_is_failed_by_the_sweep(user, fund, counting_service, enqueue):
    """Its task was lost (the queue was unreachable): it must not wait forever."""
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)

    assert sweep_lapsed_leases(job.expires_at + timedelta(seconds=1)) == 1

    job = refreshed(job)
    assert job.state == "failed" and "waited too long" in job.error
    assert ledger.balance(user).available == Decimal("10.00")
    run_queued_tasks()
    assert counting_service.runs == 0


def test_run_job_of_a_job_that_is_not_queued_does_nothing(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=1)
    cancel_job(user, job.pk)

    run_job(job.pk)

    assert counting_service.runs == 0 and refreshed(job).attempts == 0


def test_a_cancelled_jobs_charge_counts_as_consumed_and_not_as_a_failure(
    user, fund, counting_service, enqueue
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=4)
    counting_service.on_unit = lambda context, unit: unit == 3 and cancel_job(user, job.pk)
    run_queued_tasks()
    failed = enqueue(counting_service.service, user, items=2, fail_at=1)
    run_queued_tasks()
    day = timedelta(days=1)

    stats = service_selectors.service_stats(
        job.service, start=timezone.now() - day, end=timezone.now() + day
    )

    assert (refreshed(job).state, refreshed(failed).state) == ("cancelled", "failed")
    assert (stats.calls, stats.succeeded, stats.failed) == (2, 0, 1)
    assert stats.credits_consumed == Decimal("4.50")


def test_a_cancelled_job_whose_partial_result_is_not_json_keeps_none_and_pays_its_units(
    user, fund, counting_service, enqueue
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=3)

    def keep_garbage_then_cancel(context, unit):
        context.keep_partial_result({"when": timezone.now()})  # a datetime is not JSON
        cancel_job(user, job.pk)

    counting_service.on_unit = keep_garbage_then_cancel
    run_queued_tasks()

    job = refreshed(job)
    assert (job.state, job.result, job.credits_charged) == ("cancelled", None, Decimal("1.50"))


@pytest.mark.parametrize("name", ["..", "", "../../etc/passwd", "report 1.csv"])
def test_a_result_file_stays_in_its_random_folder_whatever_its_name(name, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    context = JobContext(
        job_id=uuid.uuid4(),
        user=CustomUser(),
        attempt=1,
        units_billable=1,
        deadline=timezone.now() + timedelta(minutes=1),
    )

    context.attach_file(name, b"data")

    folder, secret, file_name = context.file_name.split("/")
    assert folder == "job_results" and len(secret) >= 32 and file_name
    assert (tmp_path / context.file_name).read_bytes() == b"data"


# --------------------------------------------------------------------------- a lost enqueue


class RolledBack(Exception):
    """Ends a transaction by rolling it back."""


def test_with_the_database_queue_the_task_rolls_back_with_the_job_and_its_hold(
    user, fund, counting_service
):
    fund(user, 10)
    before = ledger_state()

    with pytest.raises(RolledBack), transaction.atomic():
        enqueue_job(counting_service.service, user, origin="web", inputs={"items": 2})
        # Written in the job's transaction, not left to an on-commit hook that may never run.
        assert queued_task_names() == [RUN_JOB]
        raise RolledBack

    assert queued_task_names() == [] and not Job.objects.exists()
    assert ledger_state() == before


def test_with_the_database_queue_a_committed_job_has_its_task(user, fund, counting_service):
    fund(user, 10)

    # No on-commit hook is run here: the task row must come with the job's own writes.
    job = enqueue_job(counting_service.service, user, origin="web", inputs={"items": 2})

    assert queued_task_names() == [RUN_JOB]
    run_queued_tasks()
    assert refreshed(job).state == Job.State.SUCCEEDED


def test_a_queued_job_whose_task_was_lost_is_enqueued_again_once_per_interval(
    user, fund, counting_service, enqueue
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)
    DBTaskResult.objects.all().delete()  # the task never reached the queue (Redis down)
    waited = job.enqueued_at + REENQUEUE_AFTER + timedelta(seconds=1)
    assert waited < job.expires_at

    assert sweep_lapsed_leases(now=job.enqueued_at + REENQUEUE_AFTER - timedelta(seconds=1)) == 0
    assert queued_task_names() == []
    assert sweep_lapsed_leases(now=waited) == 1
    assert queued_task_names() == [RUN_JOB]
    # The next sweeps, 30 s apart, leave it alone until another interval has passed.
    assert sweep_lapsed_leases(now=waited + timedelta(seconds=30)) == 0
    assert queued_task_names() == [RUN_JOB]

    run_queued_tasks()
    job = refreshed(job)
    assert job.state == Job.State.SUCCEEDED and consumes(job) == [Decimal("-3.00")]


def test_a_job_taken_in_time_is_not_enqueued_again(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)
    run_queued_tasks()

    assert sweep_lapsed_leases(now=job.enqueued_at + REENQUEUE_AFTER * 2) == 0
    assert queued_task_names() == []


# --------------------------------------------------------------------------- active jobs cap


def test_a_user_at_the_active_jobs_cap_is_refused_and_nothing_is_held_or_queued(
    user, other_user, fund, counting_service, enqueue, settings
):
    settings.JOB_MAX_ACTIVE_PER_USER = 2
    fund(user, 20)
    first = enqueue(counting_service.service, user, items=1)
    enqueue(counting_service.service, user, items=1)
    before, tasks = ledger_state(), queued_task_names()

    with pytest.raises(TooManyActiveJobs) as refused:
        enqueue(counting_service.service, user, items=1)

    assert "2 jobs queued or running" in str(refused.value)
    assert ledger_state() == before and queued_task_names() == tasks
    assert Job.objects.filter(owner=user).count() == 2
    # Another user is not held back; an ended job frees a place.
    settings.CREDIT_SYSTEM_ENABLED = False
    enqueue(counting_service.service, other_user, items=1)
    cancel_job(user, first.pk)
    enqueue(counting_service.service, user, items=1)


def test_free_jobs_count_towards_the_cap(user, counting_service, enqueue, settings):
    settings.CREDIT_SYSTEM_ENABLED = False
    settings.JOB_MAX_ACTIVE_PER_USER = 3
    for _ in range(3):
        enqueue(counting_service.service, user, items=1)

    with pytest.raises(TooManyActiveJobs):
        enqueue(counting_service.service, user, items=1)
    assert Job.objects.count() == 3 and len(queued_task_names()) == 3


@pytest.mark.django_db(transaction=True)
def test_two_enqueues_at_once_cannot_pass_the_cap_together(counting_service, settings):
    """The first enqueue stays uncommitted until the second waits on the user's lock."""
    settings.CREDIT_SYSTEM_ENABLED = False
    settings.JOB_MAX_ACTIVE_PER_USER = 1
    account = make_user()
    written, release = threading.Event(), threading.Event()
    outcome: list[str] = []

    def first() -> None:
        try:
            with transaction.atomic():
                enqueue_job(counting_service.service, account, origin="web", inputs={"items": 1})
                written.set()
                release.wait(20)
        finally:
            connection.close()

    def second() -> None:
        try:
            enqueue_job(counting_service.service, account, origin="web", inputs={"items": 1})
            outcome.append("queued")
        except TooManyActiveJobs:
            outcome.append("refused")
        finally:
            connection.close()

    one = threading.Thread(target=first)
    one.start()
    assert written.wait(20)
    two = threading.Thread(target=second)
    two.start()
    # Let the first commit only once the second is waiting for a lock (or has finished).
    deadline = time.monotonic() + 20
    while two.is_alive() and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                break
        time.sleep(0.05)
    release.set()
    one.join(20)
    two.join(20)

    assert outcome == ["refused"]
    assert Job.objects.filter(owner=account).count() == 1


# --------------------------------------------------------------------------- inputs cleared


def test_a_finished_jobs_inputs_are_gone(user, fund, counting_service, enqueue):
    fund(user, 20)
    succeeded = enqueue(counting_service.service, user, items=2)
    failed = enqueue(counting_service.service, user, items=3, fail_at=2)
    run_queued_tasks()

    assert refreshed(succeeded).state == Job.State.SUCCEEDED
    assert refreshed(failed).state == Job.State.FAILED
    assert succeeded.inputs == {} and failed.inputs == {}
    assert ServiceUsage.objects.filter(input_summary__contains="2 unit(s)").exists()


def test_a_cancelled_queued_jobs_inputs_are_gone(user, fund, counting_service, enqueue):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)
    assert refreshed(job).inputs == {"items": 2, "fail_at": 0}

    cancel_job(user, job.pk)

    assert refreshed(job).inputs == {}


def test_the_inputs_of_jobs_the_sweep_ends_are_gone(
    user, fund, counting_service, enqueue, settings
):
    settings.JOB_MAX_ATTEMPTS = 1
    fund(user, 20)
    lost = enqueue(counting_service.service, user, items=3)
    counting_service.on_unit = kill_at(2)
    run_queued_tasks()
    assert refreshed(lost).state == Job.State.RUNNING  # as a dead worker leaves it
    counting_service.on_unit = None
    expired = enqueue(counting_service.service, user, items=1)

    assert sweep_lapsed_leases(now=max(lapse(lost), expired.expires_at + timedelta(seconds=1)))

    for job in (lost, expired):
        job = refreshed(job)
        assert job.state == Job.State.FAILED and job.inputs == {}
