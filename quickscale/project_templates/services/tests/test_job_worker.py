"""A real worker process killed with SIGKILL in the middle of a job.

The job must then be retried (and charged once, for the run that finished)
or, on its last attempt, failed with its hold released: never charged twice.
Marked ``transaction=True``: the worker processes are other connections and
must see what the test commits, and the test must see what they commit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from common.testing.database import session_database_url
from common.testing.process import PROJECT_ROOT
from credits import ledger
from credits.models import LedgerEntry
from credits.tests.factories import assert_invariants
from services.jobs import enqueue_job, sweep_lapsed_leases
from services.models import Job, Service
from services.tests import slow_job_service

pytestmark = pytest.mark.django_db(transaction=True)

# The worker is `manage.py worker` itself, in a process that first registers the slow service.
WORKER = (
    "import os, sys, django;"
    "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'core.settings');"
    "django.setup();"
    "from services.tests.slow_job_service import register; register();"
    "from django.core.management import execute_from_command_line;"
    "execute_from_command_line(['manage.py', 'worker', *sys.argv[1:]])"
)

# The scheduler stays off: the test runs the lease sweep itself, at a moment it picks.
WORKER_OPTIONS = ("--poll-seconds", "0.1", "--no-scheduler")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DJANGO_"))}
    env["DATABASE_URL"] = session_database_url()

    def start(*args: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"worker{len(started)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", WORKER, *WORKER_OPTIONS, *args],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def slow_service(isolated_registry):
    cls = slow_job_service.register()
    Service.objects.create(name=slow_job_service.NAME, credit_cost=slow_job_service.UNIT_COST)
    return cls()


def wait_for(condition: Callable[[], bool], *, what: str, logs: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            output = "\n".join(path.read_text() for path in sorted(logs.glob("worker*.log")))
            raise AssertionError(f"timed out waiting for {what}; worker output:\n{output}")
        time.sleep(0.05)


def job_row(job: Job) -> Job:
    job.refresh_from_db()
    return job


def kill_mid_job(job: Job, worker: subprocess.Popen[bytes], logs: Path) -> None:
    wait_for(lambda: job_row(job).units_processed >= 1, what="the first unit's report", logs=logs)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    job = job_row(job)
    assert job.state == "running" and job.units_processed < 5, "killed after the job ended"


@pytest.mark.parametrize("max_attempts", [3, 1], ids=["retried", "last attempt"])
def test_a_worker_killed_mid_job_never_charges_twice(
    max_attempts, settings, user, fund, slow_service, start_worker, tmp_path
):
    settings.JOB_MAX_ATTEMPTS = max_attempts
    fund(user, 20)
    job = enqueue_job(slow_service, user, origin="web", inputs={"items": 5})
    assert ledger.balance(user).reserved == Decimal("10.00")

    kill_mid_job(job, start_worker(), tmp_path)

    assert LedgerEntry.objects.filter(key=job.hold_key).count() == 0
    lease = job_row(job).lease_expires_at
    assert lease is not None
    assert sweep_lapsed_leases(lease + timedelta(seconds=1)) == 1

    if max_attempts == 1:
        job = job_row(job)
        assert job.state == "failed" and job.credits_charged == 0
        balance = ledger.balance(user)
        assert (balance.total, balance.available) == (Decimal("20.00"), Decimal("20.00"))
    else:
        # The sweep queued the job again; a second worker finishes it.
        start_worker()
        wait_for(lambda: job_row(job).is_finished, what="the retry", logs=tmp_path)
        job = job_row(job)
        assert (job.state, job.attempts, job.result) == ("succeeded", 2, {"done": 5})
        balance = ledger.balance(user)
        assert (balance.total, balance.reserved) == (Decimal("10.00"), Decimal("0.00"))
    charges = list(LedgerEntry.objects.filter(key=job.hold_key).values_list("amount", flat=True))
    assert charges == ([Decimal("-10.00")] if max_attempts > 1 else [])
    assert_invariants(user)
