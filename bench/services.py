"""Service API benchmark: a charged call vs the same call free, and sentiment throughput.

One run, one process: ``POST /api/services/demo_free_service/run`` through
Django's full stack (Bearer key lookup, rate-limit counter in the database
cache, service run, usage + key-usage rows) N times with the service set to
cost 1 credit (so each call also goes through ``credits.ledger.consume``:
row locks, entry and lot rows), then N times with charging off (cost 0).
The ratio of the two is what metering costs (target: p50 at most 1.5x).
Then sentiment analyses per second through ``POST /api/text/``.

Runs against a scratch database on ``DATABASE_URL``'s server (dropped
afterwards), or on a throwaway embedded PostgreSQL when it is unset.

    .venv/bin/python bench/services.py [--calls 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import TEMPLATE, database_server, scratch_database

TEXT = "The new release is fast, friendly and a real pleasure to use. Support was slow though."


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["LOW_CREDIT_THRESHOLD"] = "0"
    os.environ["API_RATE_LIMIT_PER_MINUTE"] = "1000000"
    sys.path.insert(0, str(TEMPLATE))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    call_command("register_services", verbosity=0)


def timed_calls(
    client: Any, path: str, body: str, headers: dict[str, str], count: int
) -> list[float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.post(path, body, content_type="application/json", **headers)
        durations.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
    return durations


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    with database_server() as server, scratch_database(server) as url:
        setup_django(url)
        from decimal import Decimal

        from django.test import Client

        from api.services import api_key_create
        from credits import ledger
        from services.models import Service
        from users.models import CustomUser

        user = CustomUser.objects.create_user(email="bench@example.com", password=None)
        ledger.grant(user, Decimal(10 * args.calls), source="admin", reference="bench-grant")
        _, key = api_key_create(user, name="bench")
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
        client = Client()
        run_path = "/api/services/demo_free_service/run"
        body = json.dumps({"input": {"text": TEXT}})
        timed_calls(client, run_path, body, headers, 20)  # warm-up

        demo = Service.objects.filter(name="demo_free_service")
        results = {}
        for label, cost in (
            ("free (baseline)", "0"),
            ("charged 1 credit", "1"),
            ("free again", "0"),
        ):
            demo.update(credit_cost=Decimal(cost))
            results[label] = timed_calls(client, run_path, body, headers, args.calls)
        charged_balance = ledger.balance(user).total

        text_body = json.dumps({"operation": "analyze", "text": TEXT})
        timed_calls(client, "/api/text/", text_body, headers, 20)
        started = time.perf_counter()
        timed_calls(client, "/api/text/", text_body, headers, args.calls)
        sentiment_rate = args.calls / (time.perf_counter() - started)

    baseline = results["free (baseline)"] + results["free again"]
    base_p50, base_p95 = percentile(baseline, 0.5), percentile(baseline, 0.95)
    print(f"{'call':<20} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>10} {'p95 ratio':>10}")
    for label, values in (
        ("free (baseline)", baseline),
        ("charged 1 credit", results["charged 1 credit"]),
    ):
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        print(
            f"{label:<20} {p50 * 1000:>8.2f} {p95 * 1000:>8.2f} "
            f"{p50 / base_p50:>9.2f}x {p95 / base_p95:>9.2f}x"
        )
    ratio = percentile(results["charged 1 credit"], 0.5) / base_p50
    print(f"target: charged p50 <= 1.5x free p50 -> {'met' if ratio <= 1.5 else 'NOT met'}")
    print(f"sentiment analyses through /api/text/: {sentiment_rate:.0f}/s")
    print(
        f"(mean free {statistics.mean(baseline) * 1000:.2f} ms; "
        f"balance after run {charged_balance})"
    )


if __name__ == "__main__":
    main()
