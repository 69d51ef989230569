"""Background jobs: a service call run by a worker, its credits held meanwhile.

Design overview
---------------
A ``Job`` row (``services/models.py``) is the source of truth; the task queue
(django-tasks, ``services/tasks.py``) carries only the job's id, and the
framework knows nothing of cancel, retry, progress or leases: they are here.

Enqueue (``enqueue_job``). The service must be on and its input valid (as for
a direct call); its cleaned inputs must be JSON, since they wait in the
database. The user may have at most ``JOB_MAX_ACTIVE_PER_USER`` jobs queued or
running (a free job holds nothing, so this is what bounds one user's share of
the queue): the count is taken under a lock on the user's row, so concurrent
enqueues cannot pass it together. In one transaction the job's maximum cost
(``credit_cost`` x ``billable_units``) is held in the ledger under the key
``job:<id>``, the job row is written and, with the database task backend,
the task row too: the three commit or roll back together, so no job waits
with its credits held for a task that was never queued (the NOTIFY that wakes
idle workers goes out with that commit). A queue elsewhere (Redis) is sent
the task once the transaction commits; if that send fails or the process
dies first, the sweep enqueues it again (below). The hold expires
at enqueue + ``JOB_MAX_QUEUE_WAIT_SECONDS`` + the service's longest run
(``run_time_limit``), and the job's ``expires_at`` is that same moment: a
job that cannot finish by then is never started, so a hold is never swept
from under a running job.

Run (``run_job``, the task body). A worker *takes* a job with one conditional
UPDATE (queued -> running, ``attempts`` + 1, lease = now +
``JOB_LEASE_SECONDS``, on the database's clock so that workers on machines
whose clocks differ agree); a job that is not queued is left alone, so a
duplicate delivery of the task runs nothing. The job fails without running
(its hold released) when its service was switched off while it waited, its
class is gone, its hold is no longer open (released or swept) or it could
not finish before its hold expires. Otherwise the service's ``execute_job``
runs with a ``JobContext``: each ``progress`` report records the progress,
renews the lease (the heartbeat) and raises ``JobCancelled`` once the owner
asked to cancel. The outcome is recorded by one transaction whose first
statement is a conditional UPDATE on (still running, same attempt): only
the run that owns the job records it, and in the same transaction it settles
the hold (success: ``credit_cost`` x units processed; cancelled: the units
processed before the cancel; failure: nothing, the hold is released) and
writes the call's ``ServiceUsage`` row. The settle is idempotent on the
hold's key too, so a job is never charged twice.

Cancel (``cancel_job``). A queued job is cancelled at once and its hold
released; a running job gets ``cancel_requested`` and stops at its next
progress report, charged for the units it processed (the work was done and
what it produced is kept: ``keep_partial_result``).

Lease sweep (``sweep_lapsed_leases``, periodic). A running job whose lease
lapsed lost its worker (killed, or stuck without reporting): it goes back to
the queue (and is enqueued again) while ``attempts < JOB_MAX_ATTEMPTS``, else
it fails with its hold released; a lapsed job whose owner had asked to
cancel is cancelled, uncharged. A run that comes back after its job was swept
changes nothing (its ``attempts`` no longer match). A queued job not taken
within ``REENQUEUE_AFTER`` of its last enqueue (``enqueued_at``) is enqueued
again, its task may have been lost; a duplicate runs nothing, as the take is
conditional, and ``enqueued_at`` moves on so each job is sent again at most
once per ``REENQUEUE_AFTER``. The sweep also fails the queued jobs whose hold
has expired, so no job waits forever.

Inputs. A job's ``inputs`` are the user's content (up to hundreds of texts);
they are kept only while the job may run and emptied in the transaction that
ends it (run, cancel or sweep). Its ``ServiceUsage`` row keeps a summary.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.text import get_valid_filename

from common.task_queue import enqueue_with_transaction
from credits import ledger
from credits import selectors as credit_selectors
from credits.exceptions import HoldReleased
from credits.models import LedgerEntry
from services.base import BaseService
from services.exceptions import (
    JobAlreadyFinished,
    JobCancelled,
    JobLeaseLost,
    JobNotFound,
    JobNotSupported,
    JobTimedOut,
    ServiceError,
    TooManyActiveJobs,
)
from services.models import Job, ServiceUsage, job_result_path
from services.registry import create_service_instance
from users.models import CustomUser

logger = logging.getLogger(__name__)

HOLD_KEY_PREFIX = "job:"
ERROR_MAX_LENGTH = 300
MESSAGE_MAX_LENGTH = 200
SUMMARY_MAX_LENGTH = 200
# A queued job not taken this long after its task was sent is sent again (the task may
# have been lost). Longer than a busy queue's usual wait: each resend is a duplicate task.
REENQUEUE_AFTER = timedelta(minutes=10)

_SWITCHED_OFF = "The service was switched off while the job waited; not charged."
_NO_CLASS = "The service's code is no longer installed; not charged."
_HOLD_GONE = "The job's credit hold expired or was released before it ran; not charged."
_HOLD_LAPSED = "The job ran past its credit hold's expiry; not charged."
_TOO_LATE = "The job waited too long in the queue to finish in time; not charged."
_USAGE_STATUS: dict[str, ServiceUsage.Status] = {
    Job.State.SUCCEEDED: ServiceUsage.Status.SUCCEEDED,
    Job.State.CANCELLED: ServiceUsage.Status.CANCELLED,
}
_WORKER_LOST = "The worker running the job stopped {attempts} times; not charged."


# --------------------------------------------------------------------------- the job's side


@dataclass
class JobContext:
    """What a running job's service sees: its owner, progress reports, units, result file.

    Created by ``run_job`` for one run (``attempt``); every write it makes is
    conditional on the job still being run by this attempt.
    """

    job_id: uuid.UUID
    user: CustomUser
    attempt: int
    units_billable: int
    deadline: datetime
    units_processed: int = 0
    charged_units: bool = False
    partial_result: dict[str, Any] | None = None
    file_name: str = ""

    def progress(self, percent: float, message: str = "") -> None:
        """Record progress (0-100) and renew the lease; stop the job if it must stop.

        Raises ``JobCancelled`` once the owner asked to cancel, ``JobTimedOut``
        past the job's deadline, and ``JobLeaseLost`` when this run no longer
        owns the job (its lease lapsed and the sweep took it back). Let them
        propagate. Call it at least every ``JOB_LEASE_SECONDS``.
        """
        now = timezone.now()
        if now >= self.deadline:
            raise JobTimedOut()
        updated = Job.objects.filter(
            pk=self.job_id, state=Job.State.RUNNING, attempts=self.attempt, cancel_requested=False
        ).update(
            progress=max(0, min(100, int(percent))),
            progress_message=message[:MESSAGE_MAX_LENGTH],
            units_processed=self.units_processed,
            lease_expires_at=_lease(settings.JOB_LEASE_SECONDS),
        )
        if updated:
            return
        row = (
            Job.objects.filter(pk=self.job_id)
            .values("state", "attempts", "cancel_requested")
            .first()
        )
        if (
            row is not None
            and row["state"] == Job.State.RUNNING
            and row["attempts"] == self.attempt
            and row["cancel_requested"]
        ):
            raise JobCancelled()
        raise JobLeaseLost()

    def charge(self, units: int = 1) -> None:
        """Count ``units`` more units processed; the job is charged for them (at most the hold).

        A job that succeeds without ever calling ``charge`` is charged all its
        billable units; a cancelled one only what it counted.
        """
        if units < 0:
            raise ValueError("A job cannot charge a negative number of units.")
        self.units_processed += units
        self.charged_units = True

    def keep_partial_result(self, result: dict[str, Any]) -> None:
        """Set what the job keeps as its result if it is cancelled now (JSON)."""
        self.partial_result = result

    def attach_file(self, name: str, content: bytes) -> None:
        """Store a file for the owner to download with the job's result (replaces an earlier one).

        Stored in the media storage (MEDIA_ROOT, or the S3_BUCKET bucket) in a
        random folder; only the owner-checked download view serves it, as an
        attachment.
        """
        self._discard_file()
        try:
            safe_name = get_valid_filename(name)
        except SuspiciousFileOperation:  # "", ".", ".." and the like
            safe_name = "result"
        self.file_name = default_storage.save(
            job_result_path(None, safe_name), ContentFile(content)
        )

    def _discard_file(self) -> None:
        if self.file_name:
            default_storage.delete(self.file_name)
            self.file_name = ""


# --------------------------------------------------------------------------- enqueue


def enqueue_job(
    service: BaseService, user: CustomUser, *, origin: str, inputs: dict[str, Any]
) -> Job:
    """Validate a call, hold its maximum cost and queue it as a job; return the job.

    Raises ``ServiceUnavailable`` (service off or without a row),
    ``ServiceInputError`` (bad input), ``JobNotSupported`` (inputs not JSON),
    ``TooManyActiveJobs`` or ``InsufficientCredits``; then nothing is written,
    held or queued. The task is enqueued in the job's transaction (database
    backend) or once it commits (another backend).
    """
    if origin not in Job.Origin.values:
        raise ValueError(f"origin must be one of {', '.join(Job.Origin.values)}, not {origin!r}.")
    row = service.configuration()
    service._configuration = None  # read again by the next call on this instance
    cleaned = service.validate_input(**inputs)
    stored_inputs = _json_inputs(service, cleaned)
    units = service.billable_units(cleaned)
    cost = service.unit_price(row) * units
    charge = cost > 0 and bool(settings.CREDIT_SYSTEM_ENABLED)
    job_id = uuid.uuid4()
    now = timezone.now()
    expires_at = now + timedelta(
        seconds=settings.JOB_MAX_QUEUE_WAIT_SECONDS + service.run_time_limit()
    )
    hold_key = f"{HOLD_KEY_PREFIX}{job_id}" if charge else ""
    with transaction.atomic():
        _check_active_jobs(user)
        if charge:
            ledger.hold(user, cost, key=hold_key, description=row.name, expires_at=expires_at)
        job = Job.objects.create(
            id=job_id,
            owner=user,
            service=row,
            inputs=stored_inputs,
            origin=origin,
            hold_key=hold_key,
            credits_held=cost if charge else Decimal("0.00"),
            units_billable=units,
            expires_at=expires_at,
            enqueued_at=now,
        )
        _enqueue_with_transaction(job.pk)
    logger.info(
        "job enqueued",
        extra={"job": str(job.pk), "service": row.name, "user_id": user.pk, "held": str(cost)},
    )
    return job


def _check_active_jobs(user: CustomUser) -> None:
    """Refuse a job beyond ``JOB_MAX_ACTIVE_PER_USER`` unfinished ones (call in a transaction).

    The lock on the user's row (``FOR NO KEY UPDATE``: rows that only point at
    the user are not blocked) makes a second enqueue of the same user wait for
    this one's commit before it counts, so two cannot both pass at the limit.
    """
    limit = int(settings.JOB_MAX_ACTIVE_PER_USER)
    list(CustomUser.objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk"))
    active = Job.objects.filter(owner=user, state__in=[Job.State.QUEUED, Job.State.RUNNING]).count()
    if active >= limit:
        logger.info("job refused: too many active", extra={"user_id": user.pk, "limit": limit})
        raise TooManyActiveJobs(limit)


def _json_inputs(service: BaseService, cleaned: dict[str, Any]) -> dict[str, Any]:
    """Return ``cleaned`` as it will come back from the database, or refuse non-JSON inputs."""
    try:
        text = json.dumps(cleaned, allow_nan=False)
    except (TypeError, ValueError):
        raise JobNotSupported(service.name) from None
    stored: dict[str, Any] = json.loads(text)
    return stored


def _lease(seconds: int) -> Any:
    """A lease expiry on the database's clock, which every worker and sweep reads alike."""
    return Now() + timedelta(seconds=seconds)


def _json_or_none(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return ``value`` as JSON gives it back, or None when it is not JSON."""
    try:
        stored: dict[str, Any] | None = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        logger.warning("partial result of a cancelled job is not JSON; dropped")
        return None
    return stored


def _enqueue_with_transaction(job_id: uuid.UUID) -> None:
    """Queue the job's task with the current transaction (``common.task_queue``); a task
    lost after the commit on Redis is sent again by ``sweep_job_leases``."""
    # Imported here: services.tasks imports this module.
    from services.tasks import run_job as run_job_task

    enqueue_with_transaction(run_job_task, str(job_id))


# --------------------------------------------------------------------------- cancel


def cancel_job(user: CustomUser, job_id: uuid.UUID | str) -> Job:
    """Cancel ``user``'s job: a queued one now (hold released), a running one at its next report.

    Raises ``JobNotFound`` for a missing job or another user's, and
    ``JobAlreadyFinished`` for one that has ended. Returns the job as it now is.
    """
    pk = _job_pk(job_id)
    with transaction.atomic():
        # The row lock orders this against a worker taking the job (its UPDATE waits).
        job = (
            Job.objects.select_for_update()
            .select_related("service")
            .filter(pk=pk, owner=user)
            .first()
        )
        if job is None:
            raise JobNotFound(job_id)
        if job.is_finished:
            raise JobAlreadyFinished(job.pk, job.state)
        if job.state == Job.State.QUEUED:
            job.state = Job.State.CANCELLED
            job.finished_at = timezone.now()
            job.error = ""
            job.inputs = {}
            job.save(update_fields=["state", "finished_at", "error", "inputs"])
            if job.hold_key:
                ledger.release(job.hold_key)
        else:
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested"])
    logger.info("job cancel", extra={"job": str(job.pk), "state": job.state})
    return job


def _job_pk(job_id: uuid.UUID | str) -> uuid.UUID:
    if isinstance(job_id, uuid.UUID):
        return job_id
    try:
        return uuid.UUID(str(job_id))
    except ValueError:
        raise JobNotFound(job_id) from None


# --------------------------------------------------------------------------- run


def run_job(job_id: uuid.UUID | str) -> None:
    """Take the job if it is queued, run its service, and record the outcome (the task body)."""
    pk = _job_pk(job_id)
    now = timezone.now()
    taken = Job.objects.filter(pk=pk, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING,
        attempts=F("attempts") + 1,
        lease_expires_at=_lease(settings.JOB_LEASE_SECONDS),
        started_at=now,
        progress=0,
        progress_message="",
        units_processed=0,
    )
    if not taken:
        logger.info("job not queued; left alone", extra={"job": str(pk)})
        return
    job = Job.objects.select_related("service", "owner").get(pk=pk)
    service = _runnable_service(job, now)
    if isinstance(service, str):
        # Refused before it ran, like a direct call to a switched-off service: no usage row.
        _finish(job, Job.State.FAILED, error=service, started=time.perf_counter(), usage=False)
        return
    deadline = min(job.expires_at, now + timedelta(seconds=service.run_time_limit()))
    if not service.long_running:
        # A normal service reports no progress: its lease lasts as long as it may run.
        Job.objects.filter(pk=pk, state=Job.State.RUNNING, attempts=job.attempts).update(
            lease_expires_at=_lease(service.run_time_limit())
        )
    context = JobContext(
        job_id=job.pk,
        user=job.owner,
        attempt=job.attempts,
        units_billable=job.units_billable,
        deadline=deadline,
    )
    started = time.perf_counter()
    logger.info("job started", extra={"job": str(pk), "attempt": job.attempts})
    try:
        result = service.execute_job(context, **job.inputs)
        result = json.loads(json.dumps(result, allow_nan=False))
    except JobLeaseLost:
        context._discard_file()
        logger.warning("job run lost its lease; outcome left to the owner", extra={"job": str(pk)})
        return
    except JobCancelled:
        context._discard_file()
        _finish(
            job,
            Job.State.CANCELLED,
            context=context,
            charge_units=context.units_processed,
            result=_json_or_none(context.partial_result),
            started=started,
        )
        return
    except JobTimedOut as error:
        context._discard_file()
        _finish(job, Job.State.FAILED, context=context, error=str(error), started=started)
        return
    except Exception as error:
        context._discard_file()
        logger.warning("job failed", extra={"job": str(pk), "error": repr(error)})
        _finish(
            job,
            Job.State.FAILED,
            context=context,
            error=f"{type(error).__name__}: {error}",
            started=started,
        )
        return
    units = context.units_processed if context.charged_units else job.units_billable
    _finish(
        job,
        Job.State.SUCCEEDED,
        context=context,
        charge_units=units,
        result=result,
        started=started,
    )


def _runnable_service(job: Job, now: datetime) -> BaseService | str:
    """Return the service that runs a taken job, or the reason it must fail without running."""
    if not job.service.is_active:
        return _SWITCHED_OFF
    try:
        service = create_service_instance(job.service.name)
    except ServiceError:
        return _NO_CLASS
    if job.hold_key and not credit_selectors.hold_is_open(job.hold_key):
        return _HOLD_GONE
    if now + timedelta(seconds=service.run_time_limit()) > job.expires_at:
        return _TOO_LATE
    return service


def _finish(
    job: Job,
    state: str,
    *,
    started: float,
    context: JobContext | None = None,
    charge_units: int = 0,
    result: dict[str, Any] | None = None,
    error: str = "",
    usage: bool = True,
) -> bool:
    """Record the outcome of this run and settle its hold, if the run still owns the job.

    ``charge_units`` are charged (at most the billable ones); 0 releases the
    hold. Returns False, changing nothing, when the job was swept from this
    run (another run or the sweep decides its outcome).
    """
    units = min(charge_units, job.units_billable)
    if units < charge_units:
        logger.warning(
            "job reported more units than it held for; charged the hold",
            extra={"job": str(job.pk), "units": charge_units, "billable": job.units_billable},
        )
    # credits_held is credit_cost x units_billable, so this is credit_cost x units, exactly;
    # a job of 0 billable units held nothing and costs nothing (no division by 0).
    amount = Decimal("0.00")
    if job.units_billable:
        amount = (job.credits_held / job.units_billable * units).quantize(Decimal("0.01"))
    file_name = context.file_name if context is not None and state == Job.State.SUCCEEDED else ""
    processed = context.units_processed if context is not None else 0
    with transaction.atomic():
        owned = Job.objects.filter(
            pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts
        ).update(
            state=state,
            finished_at=timezone.now(),
            lease_expires_at=None,
            progress=100 if state == Job.State.SUCCEEDED else F("progress"),
            units_processed=processed,
            credits_charged=amount,
            result=result,
            result_file=file_name,
            error=error[:ERROR_MAX_LENGTH],
            inputs={},
        )
        if owned:
            try:
                entry = _settle(job, amount)
            except HoldReleased:
                # The hold expired under the run (it outlived its deadline without a
                # progress report to stop it): its credits may be spent already, so the
                # job fails uncharged and its output is dropped.
                state, amount, entry, error = Job.State.FAILED, Decimal("0.00"), None, _HOLD_LAPSED
                Job.objects.filter(pk=job.pk).update(
                    state=state, credits_charged=amount, result=None, result_file="", error=error
                )
                file_name = ""
            if usage:
                _record_usage(
                    job, state=state, amount=amount, entry=entry, started=started, error=error
                )
    if (not owned or not file_name) and context is not None:
        context._discard_file()
    if not owned:
        logger.warning(
            "job outcome not recorded: the run lost its lease", extra={"job": str(job.pk)}
        )
        return False
    logger.info(
        "job finished",
        extra={"job": str(job.pk), "state": state, "charged": str(amount), "error": error},
    )
    return True


def _settle(job: Job, amount: Decimal) -> LedgerEntry | None:
    """Charge ``amount`` from the job's hold (0: release it); the entry, or None."""
    if not job.hold_key:
        return None
    if amount <= 0:
        ledger.release(job.hold_key)
        return None
    return ledger.settle(job.hold_key, amount=amount, description=job.service.name)


def _record_usage(
    job: Job,
    *,
    state: str,
    amount: Decimal,
    entry: LedgerEntry | None,
    started: float | None,
    error: str,
) -> None:
    """Write the call's ``ServiceUsage`` row, so a job shows in the usage history and figures."""
    status = _USAGE_STATUS.get(state, ServiceUsage.Status.FAILED)
    ServiceUsage.objects.create(
        user_id=job.owner_id,
        service_id=job.service_id,
        origin=job.origin,
        credits_charged=amount,
        ledger_entry=entry,
        status=status,
        duration_ms=0 if started is None else round((time.perf_counter() - started) * 1000),
        input_summary=f"job {job.pk}: {job.units_billable} unit(s)"[:SUMMARY_MAX_LENGTH],
        error=error[:ERROR_MAX_LENGTH],
    )


# --------------------------------------------------------------------------- sweep


def sweep_lapsed_leases(now: datetime | None = None) -> int:
    """Requeue or fail the running jobs whose lease lapsed; fail queued jobs past expiry.

    Also enqueues again the queued jobs not taken within ``REENQUEUE_AFTER``
    of their last enqueue (counted among the jobs changed). Returns the number
    of jobs changed. Safe to run any time and from several processes: each job
    is re-read under its row lock before it is changed.
    """
    # The database's clock by default: workers on machines whose clocks differ agree.
    moment: datetime | Now = Now() if now is None else now
    lapsed = list(
        Job.objects.filter(state=Job.State.RUNNING, lease_expires_at__lt=moment)
        .order_by("lease_expires_at")
        .values_list("pk", flat=True)
    )
    expired = list(
        Job.objects.filter(state=Job.State.QUEUED, expires_at__lt=moment)
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    stale = list(
        Job.objects.filter(
            state=Job.State.QUEUED,
            enqueued_at__lt=moment - REENQUEUE_AFTER,
            expires_at__gte=moment,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    changed = sum(_sweep_lapsed(pk, moment) for pk in lapsed)
    changed += sum(_sweep_expired(pk, moment) for pk in expired)
    changed += sum(_sweep_stale(pk, moment) for pk in stale)
    return changed


@transaction.atomic
def _sweep_lapsed(pk: uuid.UUID, moment: datetime | Now) -> bool:
    job = (
        Job.objects.select_for_update()
        .select_related("service")
        .filter(pk=pk, state=Job.State.RUNNING, lease_expires_at__lt=moment)
        .first()
    )
    if job is None:
        return False
    if job.cancel_requested:
        _close_swept(job, Job.State.CANCELLED, "")
    elif job.attempts < settings.JOB_MAX_ATTEMPTS:
        job.state = Job.State.QUEUED
        job.lease_expires_at = None
        job.progress = 0
        job.progress_message = "Waiting to be retried: its worker stopped."
        job.units_processed = 0
        job.enqueued_at = timezone.now()
        job.save(
            update_fields=[
                "state",
                "lease_expires_at",
                "progress",
                "progress_message",
                "units_processed",
                "enqueued_at",
            ]
        )
        _enqueue_with_transaction(job.pk)
        logger.warning("job requeued after its lease lapsed", extra={"job": str(pk)})
    else:
        _close_swept(job, Job.State.FAILED, _WORKER_LOST.format(attempts=job.attempts))
    return True


@transaction.atomic
def _sweep_expired(pk: uuid.UUID, moment: datetime | Now) -> bool:
    job = (
        Job.objects.select_for_update()
        .filter(pk=pk, state=Job.State.QUEUED, expires_at__lt=moment)
        .first()
    )
    if job is None:
        return False
    _close_swept(job, Job.State.FAILED, _TOO_LATE)
    return True


@transaction.atomic
def _sweep_stale(pk: uuid.UUID, moment: datetime | Now) -> bool:
    """Enqueue again a queued job whose task may have been lost; move its ``enqueued_at`` on."""
    updated = Job.objects.filter(
        pk=pk, state=Job.State.QUEUED, enqueued_at__lt=moment - REENQUEUE_AFTER
    ).update(enqueued_at=moment)
    if not updated:  # taken, ended, or sent again by another sweep meanwhile
        return False
    _enqueue_with_transaction(pk)
    logger.warning("queued job not taken in time; enqueued again", extra={"job": str(pk)})
    return True


def _close_swept(job: Job, state: str, error: str) -> None:
    """End a job the sweep took from its lost run: uncharged, its hold released."""
    job.state = state
    job.error = error
    job.finished_at = timezone.now()
    job.lease_expires_at = None
    job.inputs = {}
    job.save(update_fields=["state", "error", "finished_at", "lease_expires_at", "inputs"])
    if job.hold_key:
        ledger.release(job.hold_key)
    if job.attempts:  # it ran: the call's usage row, uncharged
        _record_usage(
            job, state=state, amount=Decimal("0.00"), entry=None, started=None, error=error
        )
    logger.warning("job closed by the sweep", extra={"job": str(job.pk), "state": state})
