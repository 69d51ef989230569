"""Credit ledger benchmark: consume throughput and balance() cost against baselines.

Measured in one run, on this machine, so the ratios mean something:

- consume throughput: W worker processes (default 8) call ``ledger.consume`` of
  1 credit from ONE user's balance for a fixed time, beside the same W workers
  running a bare ``UPDATE bench_counter SET n = n - 1 WHERE id = 1`` on one row
  (autocommit). Both contend on one hot row; target: ledger >= 0.3x baseline.
  The two loads alternate over a few rounds and the medians are compared.
- balance() latency: median of ``ledger.balance`` for a user with 100 entries
  vs one with 100,000 (seeded with bulk_create: spent lots with their grant and
  consume entries, plus a few live lots). Target: ratio <= 1.5.

Runs against a scratch database created on the server of ``DATABASE_URL``
(dropped afterwards), or on a throwaway embedded PostgreSQL when it is unset.
The template directory is put on sys.path and its settings are used as they are.

    .venv/bin/python bench/credits.py [--workers 8] [--seconds 2] [--rounds 3] [--entries 100000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from benchdb import TEMPLATE, database_server, scratch_database

TARGETS = {"consume": 0.3, "balance": 1.5}


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


# --------------------------------------------------------------------------- throughput


def _worker(kind: str, user_id: int, seconds: float, start_at: float, results: Any) -> None:
    from django.db import connection, connections

    connections.close_all()  # never share the parent's socket
    from credits import ledger
    from users.models import CustomUser

    user = CustomUser.objects.get(pk=user_id)
    prefix = uuid.uuid4().hex
    operation: Callable[[int], None]
    if kind == "consume":

        def operation(i: int) -> None:
            ledger.consume(user, 1, reference=f"bench-{prefix}-{i}")

    else:
        cursor = connection.cursor()

        def operation(i: int) -> None:
            cursor.execute("UPDATE bench_counter SET n = n - 1 WHERE id = 1")

    while time.time() < start_at:
        time.sleep(0.001)
    done = 0
    deadline = start_at + seconds
    while time.time() < deadline:
        operation(done)
        done += 1
    results.put(done)
    connections.close_all()


def throughput(kind: str, user_id: int, workers: int, seconds: float) -> float:
    """Return operations per second of ``workers`` processes running ``kind``."""
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


# --------------------------------------------------------------------------- balance latency


def seed_history(user: Any, entries: int) -> None:
    """Give ``user`` about ``entries`` entries: spent lots (grant + consume) and 3 live lots."""
    from datetime import timedelta

    from django.utils import timezone

    from credits import ledger
    from credits.models import CreditLot, LedgerEntry, LedgerEntryLot

    spent = max((entries - 3) // 2, 0)
    tag = uuid.uuid4().hex[:8]
    batch = 5000
    for start in range(0, spent, batch):
        count = min(batch, spent - start)
        lots = CreditLot.objects.bulk_create(
            CreditLot(
                user=user,
                source=CreditLot.Source.PURCHASE,
                priority=CreditLot.Priority.PAY_AS_YOU_GO,
                amount=Decimal(10),
                remaining=Decimal(0),
                reference=f"seed-{tag}-{start + i}",
            )
            for i in range(count)
        )
        grants = LedgerEntry.objects.bulk_create(
            LedgerEntry(user=user, kind="grant", amount=Decimal(10), key=lot.reference)
            for lot in lots
        )
        uses = LedgerEntry.objects.bulk_create(
            LedgerEntry(user=user, kind="consume", amount=Decimal(-10), key=f"use-{lot.reference}")
            for lot in lots
        )
        LedgerEntryLot.objects.bulk_create(
            [
                LedgerEntryLot(entry=g, lot=lot, amount=Decimal(10))
                for g, lot in zip(grants, lots, strict=True)
            ]
            + [
                LedgerEntryLot(entry=u, lot=lot, amount=Decimal(-10))
                for u, lot in zip(uses, lots, strict=True)
            ]
        )
    now = timezone.now()
    ledger.grant(user, 50, source="purchase", reference=f"live-{tag}-1")
    for index, (amount, days) in enumerate(((30, 9), (20, 1)), start=2):
        ledger.grant(
            user,
            amount,
            source="subscription",
            reference=f"live-{tag}-{index}",
            expires_at=now + timedelta(days=days),
        )


def balance_latency(users: list[Any], repeats: int) -> list[float]:
    """Return the median seconds of one ``ledger.balance`` call for each user.

    Calls alternate between the users, so a machine that gets busier or quieter
    during the run shifts every figure alike and the ratio stays fair.
    """
    from credits import ledger

    for _ in range(20):  # warm the connection and the plan cache
        for user in users:
            ledger.balance(user)
    samples: list[list[float]] = [[] for _ in users]
    for _ in range(repeats):
        for index, user in enumerate(users):
            started = time.perf_counter()
            ledger.balance(user)
            samples[index].append(time.perf_counter() - started)
    return [statistics.median(series) for series in samples]


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one load run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each load")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()

    with database_server() as server, scratch_database(server, "credits") as url:
        setup_django(url)
        from django.db import connection

        from credits import ledger
        from credits.models import LedgerEntry
        from users.models import CustomUser

        spender = CustomUser.objects.create_user(email="spender@bench.test", password=None)
        ledger.grant(spender, Decimal("1000000000"), source="purchase", reference="bench-float")
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_counter (id int PRIMARY KEY, n bigint NOT NULL)")
            cursor.execute("INSERT INTO bench_counter VALUES (1, 1000000000)")

        # Alternate the two loads over several rounds and keep each one's median,
        # so background load on the machine hits both alike.
        base_runs, consume_runs = [], []
        for _ in range(args.rounds):
            base_runs.append(throughput("update", spender.pk, args.workers, args.seconds))
            consume_runs.append(throughput("consume", spender.pk, args.workers, args.seconds))
        base_ops = statistics.median(base_runs)
        consume_ops = statistics.median(consume_runs)
        entries_written = LedgerEntry.objects.filter(user=spender, kind="consume").count()
        remaining = ledger.balance(spender).total

        small = CustomUser.objects.create_user(email="small@bench.test", password=None)
        large = CustomUser.objects.create_user(email="large@bench.test", password=None)
        seed_history(small, 100)
        seed_history(large, args.entries)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        small_n = LedgerEntry.objects.filter(user=small).count()
        large_n = LedgerEntry.objects.filter(user=large).count()
        small_s, large_s = balance_latency([small, large], args.repeats)

    consume_ratio = consume_ops / base_ops
    balance_ratio = large_s / small_s
    rows = [
        ("metric", "measured", "baseline", "ratio", "target", "ok"),
        (
            f"consume, {args.workers} workers, one user (ops/s)",
            f"{consume_ops:,.0f}",
            f"{base_ops:,.0f} (bare UPDATE)",
            f"{consume_ratio:.2f}x",
            f">= {TARGETS['consume']}x",
            "yes" if consume_ratio >= TARGETS["consume"] else "NO",
        ),
        (
            f"balance() median, {large_n:,} vs {small_n:,} entries",
            f"{large_s * 1e3:.3f} ms",
            f"{small_s * 1e3:.3f} ms",
            f"{balance_ratio:.2f}",
            f"<= {TARGETS['balance']}",
            "yes" if balance_ratio <= TARGETS["balance"] else "NO",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append(
        f"(consume wrote {entries_written:,} entries; balance left {remaining}; "
        f"{args.rounds} alternating runs of {args.seconds:g} s per load, medians)"
    )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0 if consume_ratio >= TARGETS["consume"] and balance_ratio <= TARGETS["balance"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
