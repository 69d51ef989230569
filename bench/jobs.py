"""Jobs benchmark: what a held call costs the ledger, and how soon a worker starts a job.

Measured in one run, on this machine, so the ratios mean something:

- hold + settle per call vs one consume: the price of a call known only
  afterwards (``ledger.hold`` before it, ``ledger.settle`` with its cost after)
  beside a call charged up front (``ledger.consume``), on one user's balance.
  Single client: the two loads alternate in small blocks and the medians of
  the per-call times are compared (target: ratio <= 2). Contended:
  W processes (default 4) run each load on ONE user's balance for a fixed time;
  calls per second are compared (reported, no target: both serialize on the
  same lot row, so this shows how long hold + settle keep it locked).
- job enqueue-to-start latency (p50, p95) of real worker processes: the
  database backend at 1 and 2 workers beside RQ on the local Redis, and the
  database backend polling alone (``worker_latency`` says how).

Runs against a scratch database created on the server of ``DATABASE_URL``
(dropped afterwards), or on a throwaway embedded PostgreSQL when it is unset.
The template directory is put on sys.path and its settings are used as they are.

    .venv/bin/python bench/jobs.py [--calls 2000] [--block 10] [--workers 4] [--seconds 2]
        [--task-ms 10] [--quiet-jobs 60] [--quiet-gap-ms 250] [--busy-jobs 300]
        [--busy-gap-ms 30] [--redis-url redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import TEMPLATE, database_server, scratch_database

TARGETS = {"hold_settle": 2.0}
# A held call: reserve this much, then settle what it really cost (below the hold,
# as an LLM call whose output was shorter than its limit).
HOLD = Decimal("2.00")
COST = Decimal("1.37")

Row = tuple[str, str, str, str, str, str]


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["LOW_CREDIT_THRESHOLD"] = "0"
    os.environ["DEBUG"] = "False"  # as in production: no per-query debug logging
    sys.path.insert(0, str(TEMPLATE))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --------------------------------------------------------------------------- ledger


def _operation(kind: str, user: Any, prefix: str) -> Callable[[int], None]:
    """Return one call of ``kind``: ``consume``, or ``hold+settle`` of a held call."""
    from django.utils import timezone

    from credits import ledger

    if kind == "consume":

        def consume(i: int) -> None:
            ledger.consume(user, COST, reference=f"use-{prefix}-{i}")

        return consume

    def held_call(i: int) -> None:
        key = f"call-{prefix}-{i}"
        ledger.hold(user, HOLD, key=key, expires_at=timezone.now() + timedelta(minutes=5))
        ledger.settle(key, amount=COST)

    return held_call


def single_client(user: Any, calls: int, block: int) -> dict[str, float]:
    """Return the median seconds per call of each load, one client.

    The loads alternate in small blocks, so a machine that gets busier or
    quieter during the run shifts both alike and the ratio stays fair.
    """
    prefix = uuid.uuid4().hex
    operations = {kind: _operation(kind, user, prefix) for kind in ("consume", "hold+settle")}
    for operation in operations.values():  # warm the connection and the plan cache
        for i in range(20):
            operation(-1 - i)
    samples: dict[str, list[float]] = {kind: [] for kind in operations}
    for start in range(0, calls, block):
        for kind, operation in operations.items():
            for i in range(start, min(start + block, calls)):
                started = time.perf_counter()
                operation(i)
                samples[kind].append(time.perf_counter() - started)
    return {kind: statistics.median(series) for kind, series in samples.items()}


def _worker(kind: str, user_id: int, seconds: float, start_at: float, results: Any) -> None:
    from django.db import connections

    connections.close_all()  # never share the parent's socket
    from users.models import CustomUser

    user = CustomUser.objects.get(pk=user_id)
    operation = _operation(kind, user, uuid.uuid4().hex)
    while time.time() < start_at:
        time.sleep(0.001)
    done = 0
    deadline = start_at + seconds
    while time.time() < deadline:
        operation(done)
        done += 1
    results.put(done)
    connections.close_all()


def contended(kind: str, user_id: int, workers: int, seconds: float) -> float:
    """Return calls per second of ``workers`` processes running ``kind`` on one balance."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 1.0  # let every process connect first
    processes = [
        context.Process(target=_worker, args=(kind, user_id, seconds, start_at, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    total = sum(results.get() for _ in processes)
    for process in processes:
        process.join()
    return total / seconds


def ledger_rows(args: argparse.Namespace) -> tuple[list[Row], bool, str]:
    """Measure both ledger loads; return the table rows, whether targets hold, and a note."""
    from credits import ledger
    from credits.models import CreditHold
    from users.models import CustomUser

    spender = CustomUser.objects.create_user(email="spender@bench.test", password=None)
    ledger.grant(spender, Decimal("1000000000"), source="purchase", reference="bench-float")

    single = single_client(spender, args.calls, args.block)
    consume_runs, held_runs = [], []
    for _ in range(args.contended_rounds):
        consume_runs.append(contended("consume", spender.pk, args.workers, args.seconds))
        held_runs.append(contended("hold+settle", spender.pk, args.workers, args.seconds))
    consume_ops = statistics.median(consume_runs)
    held_ops = statistics.median(held_runs)

    balance = ledger.balance(spender)
    open_holds = CreditHold.objects.filter(state=CreditHold.State.OPEN).count()
    ratio = single["hold+settle"] / single["consume"]
    ok = ratio <= TARGETS["hold_settle"] and balance.reserved == 0 and open_holds == 0
    rows: list[Row] = [
        (
            "hold+settle vs consume, 1 client (median per call)",
            f"{single['hold+settle'] * 1e3:.3f} ms",
            f"{single['consume'] * 1e3:.3f} ms",
            f"{ratio:.2f}x",
            f"<= {TARGETS['hold_settle']}x",
            "yes" if ratio <= TARGETS["hold_settle"] else "NO",
        ),
        (
            f"hold+settle vs consume, {args.workers} workers, one user (calls/s)",
            f"{held_ops:,.0f}",
            f"{consume_ops:,.0f}",
            f"{consume_ops / held_ops:.2f}x",
            "(reported)",
            "",
        ),
    ]
    note = (
        f"(ledger: {args.calls} calls of each load in alternating blocks of {args.block}; "
        f"{args.contended_rounds} alternating contended runs of {args.seconds:g} s; "
        f"after the run: {open_holds} open holds, {balance.reserved} reserved)"
    )
    return rows, ok, note


# --------------------------------------------------------------------------- worker latency


LATENCY_TASK_PATH = "common.tests.worker_tasks.slow_echo"
WORKER_STOP_SECONDS = 30.0
Percentiles = tuple[float, float]


def add_latency_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the worker-latency part."""
    parser.add_argument("--task-ms", type=float, default=10.0, help="how long each job runs")
    parser.add_argument("--quiet-jobs", type=int, default=60, help="jobs of a quiet run")
    parser.add_argument(
        "--quiet-gap-ms", type=float, default=250.0, help="quiet: mean time between enqueues"
    )
    parser.add_argument("--busy-jobs", type=int, default=300, help="jobs of a busy run")
    parser.add_argument(
        "--busy-gap-ms", type=float, default=30.0, help="busy: mean time between enqueues"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="a Redis database for the RQ runs alone: it is emptied before and after",
    )


@contextmanager
def _workers(count: int, env: dict[str, str], extra: tuple[str, ...]) -> Iterator[None]:
    """``count`` real `manage.py worker` processes (no scheduler), stopped as `down` stops them."""
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--no-scheduler", "--worker-id",
             f"bench-{index}", *extra],
            cwd=TEMPLATE, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
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
                process.wait(WORKER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _task_backend(backend: str, redis_url: str) -> Any:
    """Settings that make this process enqueue on ``backend``, as a project set to it does."""
    from django.test.utils import override_settings

    if backend == "rq":
        return override_settings(
            TASKS={"default": {"BACKEND": "django_tasks_rq.RQBackend"}},
            RQ_QUEUES={"default": {"URL": redis_url}},
        )
    return override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}})


def _finished(ids: list[str], timeout: float = 120.0) -> list[Any]:
    """The results of ``ids`` once every one has finished (raises if one failed or hangs)."""
    from django_tasks import TaskResultStatus, default_task_backend

    deadline = time.monotonic() + timeout
    pending = list(ids)
    while pending:
        pending = [
            result_id
            for result_id in pending
            if default_task_backend.get_result(result_id).status
            not in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
        ]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} jobs never finished: is a worker running?")
        time.sleep(0.05)
    results = [default_task_backend.get_result(result_id) for result_id in ids]
    failed = [result for result in results if result.status != TaskResultStatus.SUCCESSFUL]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed, e.g. {failed[0].errors}")
    return results


def _warm_up(count: int) -> None:
    """Run jobs until each of the ``count`` workers has run one: all of them are ready."""
    from common.tests.worker_tasks import slow_echo

    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(seen)} of {count} workers ever ran a job")
        batch = [slow_echo.enqueue(0.2, "warm-up").id for _ in range(2 * count)]
        for result in _finished(batch):
            seen.update(result.worker_ids)


def _percentiles(jobs: int, gap_ms: float, task_ms: float) -> Percentiles:
    """Enqueue ``jobs`` jobs at random (Poisson) times; p50 and p95 of enqueue-to-start seconds."""
    import random

    from common.tests.worker_tasks import slow_echo

    rng = random.Random(16)
    ids = []
    next_at = time.perf_counter()
    for _ in range(jobs):
        next_at += rng.expovariate(1000 / gap_ms)
        time.sleep(max(0.0, next_at - time.perf_counter()))
        ids.append(slow_echo.enqueue(task_ms / 1000, "job").id)
    seconds = sorted(
        (result.started_at - result.enqueued_at).total_seconds() for result in _finished(ids)
    )
    return seconds[len(seconds) // 2], seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))]


def _measure(
    backend: str, count: int, args: argparse.Namespace, extra: tuple[str, ...] = ()
) -> dict[str, Percentiles]:
    """Quiet and busy percentiles with ``count`` workers of ``backend``, started once."""
    env = {
        **os.environ,
        "TASK_BACKEND": backend,
        "REDIS_URL": args.redis_url if backend == "rq" else "",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "False",
    }
    with _task_backend(backend, args.redis_url), _workers(count, env, extra):
        _warm_up(count)
        return {
            "quiet": _percentiles(args.quiet_jobs, args.quiet_gap_ms, args.task_ms),
            "busy": _percentiles(args.busy_jobs, args.busy_gap_ms, args.task_ms),
        }


def worker_latency(args: argparse.Namespace) -> tuple[list[Row], bool, str]:
    """Job enqueue-to-start latency (p50, p95) per task backend and worker count.

    Real worker processes (`manage.py worker`, as `quickscale up` starts it)
    take jobs of ``--task-ms`` each that arrive at random (Poisson) times: a
    quiet run (``--quiet-gap-ms`` apart on average), where latency is how fast
    an idle worker wakes, and a busy one (``--busy-gap-ms``), where it also
    counts the wait behind a busy worker, so what each job costs the worker
    beyond its own work. Latency is the job's start as its worker records it
    minus its enqueue time. The database backend runs at 1 and 2 workers beside
    RQ on the local Redis at the same counts, and once polling alone
    (``--no-listen``: what an idle worker waits without the NOTIFY wake-up, as
    behind PgBouncer in transaction mode). Reported, no target.
    """
    import redis
    from django_tasks_db.models import DBTaskResult

    redis_client = redis.Redis.from_url(args.redis_url)
    redis_client.flushdb()
    # A project that sets TASK_BACKEND=rq migrates django_rq's app too (bootstrap does).
    migrate_env = {**os.environ, "TASK_BACKEND": "rq", "REDIS_URL": args.redis_url}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=TEMPLATE, env=migrate_env, check=True,
    )  # fmt: skip
    try:
        runs = {
            ("database", 1): _measure("database", 1, args),
            ("database", 2): _measure("database", 2, args),
            ("rq", 1): _measure("rq", 1, args),
            ("rq", 2): _measure("rq", 2, args),
            ("polling", 1): _measure("database", 1, args, ("--no-listen",)),
        }
    finally:
        redis_client.flushdb()
        DBTaskResult.objects.all().delete()

    def ms(pair: Percentiles) -> str:
        return f"{pair[0] * 1e3:.1f} / {pair[1] * 1e3:.1f} ms"

    def row(metric: str, measured: Percentiles, baseline: Percentiles) -> Row:
        ratio = f"{measured[0] / baseline[0]:.2f}x"
        return (metric, ms(measured), ms(baseline), ratio, "(reported)", "")

    rows: list[Row] = []
    for load in ("quiet", "busy"):
        for count in (1, 2):
            workers = f"{count} worker{'s' * (count > 1)}"
            rows.append(
                row(
                    f"enqueue-to-start p50 / p95, {load}, database, {workers} (baseline: RQ)",
                    runs[("database", count)][load],
                    runs[("rq", count)][load],
                )
            )
    rows.append(
        row(
            "enqueue-to-start p50 / p95, quiet, database polling alone (baseline: woken)",
            runs[("polling", 1)]["quiet"],
            runs[("database", 1)]["quiet"],
        )
    )
    note = (
        f"(latency: jobs of {args.task_ms:g} ms; quiet: {args.quiet_jobs} jobs "
        f"{args.quiet_gap_ms:g} ms apart on average, busy: {args.busy_jobs} jobs "
        f"{args.busy_gap_ms:g} ms apart; RQ on {args.redis_url}, a forked process per job; "
        "polling every 1 s)"
    )
    return rows, True, note


# --------------------------------------------------------------------------- main


def render(rows: list[Row], notes: list[str]) -> str:
    header: Row = ("metric", "measured", "baseline", "ratio", "target", "ok")
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.extend(note for note in notes if note)
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls of each load, one client")
    parser.add_argument("--block", type=int, default=10, help="calls of one load in a row")
    parser.add_argument("--workers", type=int, default=4, help="processes of a contended run")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of a contended run")
    parser.add_argument(
        "--contended-rounds", type=int, default=3, help="alternating contended runs per load"
    )
    add_latency_arguments(parser)
    args = parser.parse_args()

    with database_server() as server, scratch_database(server, "jobs") as url:
        setup_django(url)
        ledger_table, ledger_ok, ledger_note = ledger_rows(args)
        worker_table, worker_ok, worker_note = worker_latency(args)

    sys.stdout.write(render(ledger_table + worker_table, [ledger_note, worker_note]))
    return 0 if ledger_ok and worker_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
