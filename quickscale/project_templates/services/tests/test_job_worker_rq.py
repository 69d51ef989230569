"""Jobs on the Redis queue (TASK_BACKEND=rq): 2 RQ workers, one killed with SIGKILL mid-job.

The workers are ``manage.py worker`` processes on the real Redis (under an RQ
key prefix and cache prefix of the test's own, deleted afterwards) and the
test's database; each runs RQ's worker, which forks a work horse per task, and
the periodic scheduler. The jobs are enqueued by another process, as a web
process would enqueue them. Killing a worker here kills its horse too, as
losing its machine would (a horse outlives its worker otherwise, in a process
group of its own, and finishes its task).

What brings a lost job back is the product's own lease, not RQ's: the
scheduler of a surviving worker enqueues ``services.tasks.sweep_job_leases``
on RQ, which queues the job again (or fails it, its hold released) once its
lease lapsed. RQ itself only moves the dead task to its failed registry, later,
and does not run it again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from common.testing.process import PROJECT_ROOT, run_python
from common.testing.redis import TEST_REDIS_URL, delete_keys, prefixed_cache_env
from common.testing.server import server_env
from credits import ledger
from credits.models import LedgerEntry
from credits.tests.factories import assert_invariants
from services.models import Job, Service, ServiceUsage
from services.tests import slow_job_service
from services.tests.test_job_worker import WORKER, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_SECONDS = 2
JOBS = 6
ITEMS = 6
# The lease sweep as often as the scheduler ticks (every 5 s), not every 30 s.
SETTINGS = """
PERIODIC_TASKS = {"services.tasks.sweep_job_leases": 1}
"""
# What a web process does when a user starts jobs: enqueue_job, in a process of its own.
ENQUEUE = """
import json, os, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
django.setup()
from services.tests.slow_job_service import SlowJob, register
register()
from services.jobs import enqueue_job
from users.models import CustomUser
user = CustomUser.objects.get(pk=int(sys.argv[1]))
jobs = [
    enqueue_job(SlowJob(), user, origin="api", inputs={"items": int(sys.argv[3])})
    for _ in range(int(sys.argv[2]))
]
print(json.dumps([str(job.pk) for job in jobs]))
"""

# RQ's own recovery of a task whose worker died, run now (its workers run it every 10
# minutes, once the dead worker's heartbeat lapsed): the job ids RQ then counts failed.
RQ_CLEAN_UP = """
import json, os, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
django.setup()
import django_rq
from django_tasks_rq.backend import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
queue = django_rq.get_queue("default", job_class=Job)
StartedJobRegistry(queue=queue).cleanup(time.time() + 3600)
failed = FailedJobRegistry(queue=queue).get_job_ids(cleanup=False)
print(json.dumps([Job.fetch(id, connection=queue.connection).args for id in failed]))
"""


@pytest.fixture
def rq_env(tmp_path: Path, redis_server: redis.Redis) -> Iterator[tuple[dict[str, str], str]]:
    """Settings of processes on the rq backend, and the prefix of every Redis key they write."""
    prefix = f"qs-test-rq-{uuid.uuid4().hex[:12]}"
    env = server_env(
        REDIS_URL=TEST_REDIS_URL,
        TASK_BACKEND="rq",
        RQ_KEY_PREFIX=prefix,
        JOB_LEASE_SECONDS=str(LEASE_SECONDS),
        LOG_LEVEL="INFO",
        **prefixed_cache_env(tmp_path, prefix, SETTINGS),
    )
    # The rq backend adds django_rq's app, whose migrations the worker's checks want applied.
    migrated = run_python(["manage.py", "migrate", "--verbosity", "0"], env)
    assert migrated.returncode == 0, migrated.stderr
    try:
        yield env, prefix
    finally:
        delete_keys(redis_server, f"{prefix}:*")


@pytest.fixture
def start_rq_worker(
    tmp_path: Path, rq_env: tuple[dict[str, str], str]
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    env, _ = rq_env
    with ExitStack() as stack:
        started: list[subprocess.Popen[bytes]] = []

        def start() -> subprocess.Popen[bytes]:
            index = len(started)
            with (tmp_path / f"worker{index}.log").open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-c", WORKER, "--worker-id", f"rq-{index}"],
                    cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
            started.append(process)
            stack.callback(stop, process)
            return process

        yield start


def stop(process: subprocess.Popen[bytes]) -> None:
    for pid in children(process.pid):  # a horse running a task
        os.kill(pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (RQ's work horse), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def logs(folder: Path) -> str:
    return "\n".join(path.read_text() for path in sorted(folder.glob("worker*.log")))


def enqueue(env: dict[str, str], user_id: int, count: int, items: int) -> list[Job]:
    done = run_python(["-c", ENQUEUE, str(user_id), str(count), str(items)], env)
    assert done.returncode == 0, done.stderr
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    return list(Job.objects.filter(pk__in=ids))


def jobs_of(jobs: list[Job]) -> list[Job]:
    return list(Job.objects.filter(pk__in=[job.pk for job in jobs]).order_by("created_at"))


@pytest.fixture
def slow_service(isolated_registry):
    slow_job_service.register()
    return Service.objects.create(
        name=slow_job_service.NAME, credit_cost=slow_job_service.UNIT_COST
    )


@pytest.mark.parametrize("max_attempts", [3, 1], ids=["retried", "last attempt"])
def test_a_killed_rq_workers_job_ends_once_and_no_credit_is_lost_or_doubled(
    max_attempts, user, fund, slow_service, rq_env, start_rq_worker, redis_server, tmp_path
):
    env, prefix = rq_env
    env["JOB_MAX_ATTEMPTS"] = str(max_attempts)
    granted = Decimal("200.00")
    fund(user, granted)
    jobs = enqueue(env, user.pk, JOBS, ITEMS)
    held = slow_job_service.UNIT_COST * ITEMS
    assert ledger.balance(user).reserved == held * JOBS
    workers = [start_rq_worker(), start_rq_worker()]

    def running() -> list[Job]:
        return [job for job in jobs_of(jobs) if job.state == "running" and job.units_processed]

    # A worker runs one task at a time: two jobs under way are one on each worker.
    wait_for(lambda: len(running()) == 2, what="both workers running a job", logs=tmp_path)
    horses = children(workers[0].pid)
    assert horses, "the worker runs no work horse"
    # Its machine is gone: the worker first (it cannot react), then its horse.
    workers[0].send_signal(signal.SIGKILL)
    for pid in horses:
        os.kill(pid, signal.SIGKILL)
    workers[0].wait(timeout=10)

    def all_finished() -> bool:
        return all(job.is_finished for job in jobs_of(jobs))

    wait_for(all_finished, what="every job to end", logs=tmp_path, timeout=120)
    finished = jobs_of(jobs)
    states = sorted((job.state, job.attempts) for job in finished)
    if max_attempts > 1:
        # The killed worker's job ran again after its lease lapsed; every other ran once.
        assert states == [("succeeded", 1)] * (JOBS - 1) + [("succeeded", 2)], (
            horses,
            logs(tmp_path),
        )
    else:
        # Its last attempt: failed by the sweep, uncharged.
        assert states == [("failed", 1)] + [("succeeded", 1)] * (JOBS - 1), (
            horses,
            logs(tmp_path),
        )
    charged = Decimal(0)
    for job in finished:
        entries = [entry.amount for entry in LedgerEntry.objects.filter(key=job.hold_key)]
        expected = held if job.state == "succeeded" else Decimal(0)
        assert (entries, job.credits_charged) == ([-expected] if expected else [], expected)
        charged += expected
    # One usage row per job: its outcome was recorded once.
    summaries = ServiceUsage.objects.filter(user=user).values_list("input_summary", flat=True)
    assert Counter(summary.split(":")[0] for summary in summaries) == {
        f"job {job.pk}": 1 for job in finished
    }
    balance = ledger.balance(user)
    assert (balance.total, balance.reserved) == (granted - charged, Decimal("0.00"))
    assert_invariants(user)

    # RQ's own clean-up of the dead worker's task counts it failed and runs nothing again.
    workers[1].send_signal(signal.SIGTERM)
    assert workers[1].wait(timeout=30) == 0, logs(tmp_path)
    done = run_python(["-c", RQ_CLEAN_UP], env)
    assert done.returncode == 0, done.stderr
    lost = [job for job in finished if job.attempts == 2 or job.state == "failed"]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[str(lost[0].pk)]]
    assert [(job.state, job.attempts) for job in jobs_of(jobs)] == [
        (job.state, job.attempts) for job in finished
    ]
    assert ledger.balance(user) == balance
    # RQ was told to let tasks run (the jobs' own limits apply), not to stop them at 3 minutes.
    keys = redis_server.scan_iter(f"{prefix}:job:*")
    tasks = [key for key in keys if redis_server.type(key) == b"hash"]
    assert len(tasks) >= JOBS + 1  # the retry is a task of its own, as is each sweep
    assert {redis_server.hget(key, "timeout") for key in tasks} == {b"-1"}
