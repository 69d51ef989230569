"""Scale benchmark: more web processes and workers on one machine, and the limiter's engine.

One run, on this machine, so the figures compare with each other:

- charged API calls per second (``POST /api/services/demo_free_service/run``
  at 1 credit: Bearer key, rate-limit hit, ``ledger.consume``, usage rows)
  through 1 and through 3 uvicorn processes, each a server of its own on its
  own port, ``--clients`` keep-alive clients spread round-robin over them,
  for ``--seconds`` each, in ``--rounds`` alternating rounds (medians). The
  ratio is bounded by the machine's cores (the clients run here too), not by
  the project: the processes share nothing but PostgreSQL (and Redis, when set);
- job throughput with 1 and 2 ``manage.py worker`` processes: ``--jobs``
  charged jobs (``services.jobs.enqueue_job``: a hold each, settled by the
  worker) queued at once on the database backend, jobs per second from the
  first start to the last finish as the jobs record them;
- p50 / p95 latency of one charged call (one client, one process) with the
  rate limiter (and the cache) on PostgreSQL beside the same on Redis
  (``REDIS_URL``: ``--redis-url``, database 12 of the local server by
  default; only this run's keys are deleted, before and after), the two
  alternating over ``--rounds``, a fresh server each.

Runs against a scratch database on ``DATABASE_URL``'s server (dropped
afterwards), or on a throwaway embedded PostgreSQL when it is unset. Reported,
no targets. Not part of CI.

    .venv/bin/python bench/scale.py [--clients 12] [--seconds 5] [--rounds 3] [--jobs 400]
        [--latency-calls 200] [--redis-url redis://127.0.0.1:6379/12]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import TEMPLATE, database_server, scratch_database

SERVICE = "demo_free_service"
RUN_PATH = f"/api/services/{SERVICE}/run"
BODY = json.dumps({"input": {"text": "The new release is fast and friendly. Support was slow."}})
PRICE = Decimal("1.00")
# Every key prefix this run writes in its Redis database: the limiter's counters and
# the cache's entries (Django's default key format, version 1).
REDIS_PREFIXES = ("ratelimit:api", ":1:")


def common_env(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "LOG_LEVEL": "ERROR",
        "DEBUG": "False",  # as in production
        "LOW_CREDIT_THRESHOLD": "0",
        # The limiter counts every call (so its engine is measured) but never refuses.
        "API_RATE_LIMIT_PER_MINUTE": "1000000000",
        "JOB_MAX_ACTIVE_PER_USER": "1000000",
        "TASK_BACKEND": "database",
        "REDIS_URL": "",
    }


def setup_django(database_url: str) -> None:
    os.environ.update(common_env(database_url))
    sys.path.insert(0, str(TEMPLATE))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    call_command("register_services", stdout=StringIO())


def seed(clients: int) -> tuple[Any, list[str]]:
    from api.services import api_key_create
    from credits import ledger
    from services.models import Service
    from users.models import CustomUser

    Service.objects.filter(name=SERVICE).update(credit_cost=PRICE, is_active=True)
    user = CustomUser.objects.create_user(email="scale@bench.test", password=None)
    ledger.grant(user, Decimal("100000000"), source="admin", reference="bench-scale-grant")
    keys = [api_key_create(user, name=f"client {i}")[1] for i in range(clients)]
    return user, keys


# --------------------------------------------------------------------------- web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def web_servers(count: int, env: dict[str, str], log: Path) -> Iterator[list[int]]:
    """``count`` single-process uvicorn servers on ports of their own; yield the ports."""
    ports = [free_port() for _ in range(count)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with log.open("ab") as output:
            for port in ports:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "uvicorn", "core.asgi:application", "--port",
                         str(port), "--lifespan", "off", "--no-access-log"],
                        cwd=TEMPLATE, env=env, stdout=output, stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        for port, process in zip(ports, processes, strict=True):
            _wait_for_port(port, process, log)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited; see {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not start; see {log}")


def _call(conn: http.client.HTTPConnection, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request("POST", RUN_PATH, BODY, headers)
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"charged call answered {response.status}: {payload[:300]!r}")


def calls_per_second(ports: list[int], keys: list[str], seconds: float) -> float:
    """Charged calls answered per second by ``len(keys)`` clients spread over ``ports``."""
    start = threading.Barrier(len(keys) + 1)
    done = [0] * len(keys)
    errors: list[BaseException] = []
    stop_at = [0.0]

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", ports[index % len(ports)], timeout=60)
        try:
            for _ in range(5):  # warm-up: the connection, the process's pool
                _call(conn, keys[index])
            start.wait()
            while time.monotonic() < stop_at[0]:
                _call(conn, keys[index])
                done[index] += 1
        except BaseException as error:  # reported by the caller
            errors.append(error)
            start.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(keys))]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + 3600  # set properly once everyone is warm
    start.wait()
    began = time.monotonic()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]!r}")
    return sum(done) / (time.monotonic() - began)


def latencies(port: int, key: str, calls: int) -> list[float]:
    """Seconds of each of ``calls`` charged calls made one after another."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(20):
        _call(conn, key)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        _call(conn, key)
        samples.append(time.perf_counter() - started)
    conn.close()
    return samples


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``samples``."""
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def clear_redis(url: str) -> int:
    """Delete this run's keys (``REDIS_PREFIXES``) from ``url``'s database; return how many."""
    import redis

    client = redis.Redis.from_url(url)
    deleted = 0
    for prefix in REDIS_PREFIXES:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            deleted += int(client.delete(key))
    client.close()
    return deleted


# --------------------------------------------------------------------------- jobs


@contextmanager
def workers(count: int, env: dict[str, str], log: Path) -> Iterator[None]:
    """``count`` `manage.py worker` processes (no scheduler), stopped with SIGTERM."""
    with log.open("ab") as output:
        processes = [
            subprocess.Popen(
                [sys.executable, "manage.py", "worker", "--no-scheduler", "--worker-id",
                 f"scale-{index}"],
                cwd=TEMPLATE, env=env, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT,
            )
            for index in range(count)
        ]  # fmt: skip
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _enqueue(user: Any, count: int) -> list[Any]:
    from services.jobs import enqueue_job
    from services.registry import create_service_instance

    service = create_service_instance(SERVICE)
    return [
        enqueue_job(service, user, origin="api", inputs=json.loads(BODY)["input"]).pk
        for _ in range(count)
    ]


def _wait_finished(ids: list[Any], timeout: float = 300.0) -> list[Any]:
    from services.models import Job

    deadline = time.monotonic() + timeout
    while True:
        jobs = list(Job.objects.filter(pk__in=ids))
        if all(job.state in (Job.State.SUCCEEDED, Job.State.FAILED) for job in jobs):
            return jobs
        if time.monotonic() > deadline:
            raise RuntimeError("jobs never finished: see the worker log")
        time.sleep(0.1)


def jobs_per_second(user: Any, count: int, jobs: int, env: dict[str, str], log: Path) -> float:
    """Charged jobs per second through ``count`` workers, from first start to last finish."""
    from services.models import Job

    with workers(count, env, log):
        _wait_finished(_enqueue(user, 4 * count))  # every worker up and warm
        finished = _wait_finished(_enqueue(user, jobs))
    failed = [job for job in finished if job.state != Job.State.SUCCEEDED]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed, e.g. {failed[0].error!r}")
    first = min(job.started_at for job in finished)
    last = max(job.finished_at for job in finished)
    return float(jobs / (last - first).total_seconds())


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=12, help="concurrent HTTP clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of a throughput run")
    parser.add_argument("--jobs", type=int, default=400, help="jobs of a throughput run")
    parser.add_argument(
        "--latency-calls", type=int, default=200, help="calls of a latency run (per round)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of the web and latency runs"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_SCALE_REDIS_URL", "redis://127.0.0.1:6379/12"),
        help="the Redis database of the Redis latency run (only this run's keys are deleted)",
    )
    args = parser.parse_args()
    log = Path(tempfile.mkstemp(prefix="qs-bench-scale-", suffix=".log", dir="/tmp")[1])
    lines: list[str] = []
    with database_server() as server, scratch_database(server, "scale") as url:
        setup_django(url)
        from credits import ledger

        user, keys = seed(args.clients)
        granted = ledger.balance(user).total
        env = {**os.environ, **common_env(url), "DB_POOL_SIZE": str(args.clients + 4),
               "SERVICE_MAX_CONCURRENT_PER_PROCESS": str(args.clients + 2)}  # fmt: skip

        # Alternating rounds, medians compared: a machine that gets busier or quieter
        # during the run shifts both alike.
        runs: dict[int, list[float]] = {1: [], 3: []}
        for _ in range(args.rounds):
            for count in runs:
                with web_servers(count, env, log) as ports:
                    runs[count].append(calls_per_second(ports, keys, args.seconds))
        rates = {count: statistics.median(series) for count, series in runs.items()}
        lines.append(
            f"charged calls/s, {args.clients} clients (median of {args.rounds}): "
            f"1 web process {rates[1]:,.0f}, 3 web processes {rates[3]:,.0f} -> "
            f"{rates[3] / rates[1]:.2f}x (bounded by {os.cpu_count()} cores shared with the "
            f"clients; runs: 1 {[round(r) for r in runs[1]]}, 3 {[round(r) for r in runs[3]]})"
        )

        job_rates = {count: jobs_per_second(user, count, args.jobs, env, log) for count in (1, 2)}
        lines.append(
            f"charged jobs/s, {args.jobs} jobs queued at once: 1 worker {job_rates[1]:,.1f}, "
            f"2 workers {job_rates[2]:,.1f} -> {job_rates[2] / job_rates[1]:.2f}x"
        )

        samples: dict[str, list[float]] = {"PostgreSQL": [], "Redis": []}
        clear_redis(args.redis_url)
        try:
            for _ in range(args.rounds):
                for engine, redis_url in (("PostgreSQL", ""), ("Redis", args.redis_url)):
                    with web_servers(1, {**env, "REDIS_URL": redis_url}, log) as ports:
                        samples[engine] += latencies(ports[0], keys[0], args.latency_calls)
        finally:
            redis_keys = clear_redis(args.redis_url)
        timings = {engine: percentiles(series) for engine, series in samples.items()}
        for engine, (p50, p95) in timings.items():
            lines.append(
                f"charged call, limiter and cache on {engine} ({len(samples[engine])} calls): "
                f"p50 {p50 * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms"
            )
        from services.models import Job

        balance = ledger.balance(user)
        open_jobs = Job.objects.exclude(state__in=[Job.State.SUCCEEDED, Job.State.FAILED]).count()
        lines.append(
            f"(after the run: {granted - balance.total} credits spent, {balance.reserved} "
            f"reserved, {open_jobs} unfinished jobs; {redis_keys} keys of this run deleted "
            f"from {args.redis_url}; "
            f"{log.read_text(errors='replace').count('Traceback')} tracebacks in {log})"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
