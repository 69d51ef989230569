"""Many processes behave as one: 3 web servers and 2 workers on one PostgreSQL and the real Redis.

Each web process is a uvicorn server of its own on its own port (as behind a
load balancer) with ``REDIS_URL`` set, so the rate limiter and the cache are
on the test Redis; the workers run `manage.py worker` on the database queue.
The clients spread their calls round-robin over the servers. Then one web
process and one worker are killed with SIGKILL mid-load: no credit may be
lost or doubled, and every job must end succeeded or failed with its hold
released (a short ``JOB_LEASE_SECONDS``, and the lease sweep run here).
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from api.models import APIKey
from api.services import api_key_create
from common.testing.process import PROJECT_ROOT
from common.testing.redis import TEST_REDIS_URL, delete_keys
from common.testing.server import server_env, uvicorn
from credits import ledger
from credits.models import LedgerEntry
from credits.tests.factories import assert_invariants
from services.jobs import enqueue_job, sweep_lapsed_leases
from services.models import Job, Service, ServiceUsage
from services.tests import slow_job_service
from services.tests.test_job_worker import WORKER
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)

SERVICE = "demo_free_service"
RUN_PATH = f"/api/services/{SERVICE}/run"
BODY = json.dumps({"input": {"text": "Fast and friendly."}})
RATE_LIMIT = 30
LEASE_SECONDS = 2


@pytest.fixture
def cluster(
    tmp_path: Path, redis_server: redis.Redis, isolated_registry: object
) -> Iterator[tuple[list[int], list[subprocess.Popen[bytes]], list[subprocess.Popen[bytes]]]]:
    """3 web servers (ports, processes) and 2 workers, all on this test's database."""
    slow_job_service.register()
    Service.objects.update_or_create(
        name=SERVICE, defaults={"credit_cost": Decimal("1.00"), "is_active": True}
    )
    Service.objects.create(name=slow_job_service.NAME, credit_cost=slow_job_service.UNIT_COST)
    env = server_env(
        REDIS_URL=TEST_REDIS_URL,
        API_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT),
        SERVICE_MAX_CONCURRENT_PER_KEY="50",
        SERVICE_MAX_CONCURRENT_PER_PROCESS="20",
        LOW_CREDIT_THRESHOLD="0",
        JOB_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    workers: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        ports = []
        webs = []
        for index in range(3):
            port, process = stack.enter_context(uvicorn(env, tmp_path / f"web{index}.log"))
            ports.append(port)
            webs.append(process)
        for index in range(2):
            with (tmp_path / f"worker{index}.log").open("wb") as log:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-c", WORKER, "--poll-seconds", "0.1",
                         "--no-scheduler", "--worker-id", f"proof-{index}"],
                        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        try:
            yield ports, webs, workers
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                worker.wait(timeout=10)
    # Only this test's counters (they would expire with their minute anyway).
    for key_id in APIKey.objects.values_list("pk", flat=True):
        delete_keys(redis_server, f"ratelimit:api-key:{key_id}:*")


Answer = tuple[int, str, int | None]


def call(port: int, key: str) -> Answer:
    """One charged call: (status, error code, usage id); status 0 when no answer came."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", RUN_PATH, BODY, {"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        payload = json.loads(response.read() or b"{}")
    except (OSError, http.client.HTTPException):
        return 0, "no answer", None
    finally:
        conn.close()
    return (
        response.status,
        (payload.get("error") or {}).get("code", ""),
        (payload.get("data") or {}).get("usage_id"),
    )


def all_at_once(ports: list[int], keys: list[str], count: int) -> list[Answer]:
    """``count`` calls in as many threads, released together, round-robin over ``ports``."""
    gate = threading.Barrier(count)
    answers: list[Answer] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        gate.wait()
        answer = call(ports[index % len(ports)], keys[index % len(keys)])
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def whole_window_left(seconds: float) -> None:
    """Wait for a new rate-limit minute when fewer than ``seconds`` of this one are left."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.2)


def test_three_web_processes_and_two_workers_behave_as_one(cluster, user, other_user, fund):
    ports, webs, workers = cluster
    # A balance that covers exactly K calls: exactly K succeed, across the 3 processes.
    k = 12
    fund(user, k)
    keys = [api_key_create(user, name=f"k{i}")[1] for i in range(3)]
    whole_window_left(20)
    answers = all_at_once(ports, keys, 30)
    statuses = Counter((status, code) for status, code, _ in answers)
    assert statuses == {(200, ""): k, (402, "insufficient_credits"): 30 - k}, statuses
    assert ledger.balance(user).total == 0
    assert ServiceUsage.objects.filter(user=user, ledger_entry__isnull=False).count() == k
    assert_invariants(user)

    # One key's limit holds across the 3 processes: RATE_LIMIT calls a minute, not 3x.
    fund(other_user, 100)
    limited_key = api_key_create(other_user, name="limited")[1]
    whole_window_left(20)
    answers = all_at_once(ports, [limited_key], RATE_LIMIT + 15)
    statuses = Counter((status, code) for status, code, _ in answers)
    assert statuses == {(200, ""): RATE_LIMIT, (429, "rate_limited"): 15}, statuses

    # Kill one web process and one worker mid-load: nothing lost or doubled.
    spender = make_user("spender@example.com")
    granted = Decimal("200.00")
    fund(spender, granted)
    spender_keys = [api_key_create(spender, name=f"s{i}")[1] for i in range(RATE_LIMIT)]
    jobs = [
        enqueue_job(slow_job_service.SlowJob(), spender, origin="api", inputs={"items": 4})
        for _ in range(4)
    ]
    wait_for(
        lambda: (
            Job.objects.filter(pk__in=[j.pk for j in jobs], units_processed__gte=1).count() >= 2
        ),
        "both workers running a job",
    )
    answers_box: list[Answer] = []
    load = threading.Thread(target=lambda: answers_box.extend(all_at_once(ports, spender_keys, 24)))
    load.start()
    time.sleep(0.05)
    webs[0].send_signal(signal.SIGKILL)
    workers[0].send_signal(signal.SIGKILL)
    load.join()
    workers[0].wait(timeout=10)

    def all_finished() -> bool:
        sweep_lapsed_leases()
        return all(job.is_finished for job in Job.objects.filter(pk__in=[j.pk for j in jobs]))

    wait_for(all_finished, "every job to finish after the lease sweep")
    finished = list(Job.objects.filter(pk__in=[j.pk for j in jobs]))
    assert {job.state for job in finished} <= {"succeeded", "failed"}
    # The killed worker's job was taken again after its lease lapsed (the sweep ran).
    assert max(job.attempts for job in finished) >= 2, [job.attempts for job in finished]
    for job in finished:
        charged = sum(
            LedgerEntry.objects.filter(key=job.hold_key).values_list("amount", flat=True),
            Decimal(0),
        )
        assert -charged == job.credits_charged, job
    # Every 200 was charged once; a call the killed server never answered was charged
    # at most once (its usage row says so); every charge is accounted for in the ledger.
    ok_usages = [usage_id for status, _, usage_id in answers_box if status == 200]
    assert ok_usages and all(status in (200, 0) for status, _, _ in answers_box), answers_box
    charged_usages = ServiceUsage.objects.filter(
        user=spender, service__name=SERVICE, ledger_entry__isnull=False
    )
    assert set(ok_usages) <= set(charged_usages.values_list("pk", flat=True))
    calls_charged = charged_usages.exclude(status=ServiceUsage.Status.REFUNDED).count()
    jobs_charged = sum((job.credits_charged for job in finished), Decimal(0))
    balance = ledger.balance(spender)
    assert balance.reserved == 0
    assert balance.total == granted - calls_charged - jobs_charged, Counter(
        charged_usages.values_list("status", flat=True)
    )
    assert_invariants(spender)
