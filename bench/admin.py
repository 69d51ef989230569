"""Admin dashboard benchmark: payment search and the user page at 1,000 vs 1,000,000 payments.

One run, one scratch database, so the comparison means something:

1. seed USERS accounts (one precomputed password hash, ``INSERT ... SELECT
   generate_series``) and the first 1,000 payments; measure every page;
2. seed up to PAYMENTS payments (same statement, the next ids); measure again.

Each page is fetched through Django's test client as a signed-in staff member
(URL routing, middleware, the view, the templates: the whole page), REPEATS
times after a warm-up; the table shows the median, and the number of SQL
queries each page ran at both sizes. Targets: under 200 ms per page at the
large size, and the same number of queries at both sizes.

Runs against a scratch database on ``DATABASE_URL``'s server (dropped
afterwards), or a throwaway embedded PostgreSQL when it is unset.

    .venv/bin/python bench/admin.py [--users 100000] [--payments 1000000] [--repeats 15]
    .venv/bin/python bench/admin.py --users 1000 --payments 20000 --repeats 3   # smoke
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchdb import TEMPLATE, database_server, scratch_database

TARGET_MS = 200.0
SMALL = 1_000


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(TEMPLATE))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)


# --------------------------------------------------------------------------- seeding

USERS_SQL = """
INSERT INTO users_customuser
    (password, last_login, is_superuser, first_name, last_name, is_staff, is_active,
     date_joined, email)
SELECT %(hash)s, NULL, false, '', '', false, true,
       now() - make_interval(mins => %(n)s - g), 'user' || g || '@bench.test'
FROM generate_series(1, %(n)s) AS g
"""

# Payment g belongs to user (g mod USERS); ids and created_at rise together over
# about a year; 1 in 5 is a subscription, 1 in 50 failed, 1 in 50 refunded.
PAYMENTS_SQL = """
INSERT INTO stripe_manager_payment
    (user_id, product_id, kind, status, amount, amount_refunded, currency, description,
     quantity, credits, credit_reference, price_id, stripe_checkout_session_id,
     stripe_invoice_id, stripe_payment_intent_id, stripe_subscription_id, period_start,
     period_end, stripe_created, receipt_number, created_at)
SELECT %(first_user)s + (g %% %(users)s), NULL,
       CASE WHEN g %% 5 = 0 THEN 'subscription' ELSE 'credit_purchase' END,
       CASE g %% 50 WHEN 0 THEN 'failed' WHEN 1 THEN 'refunded' ELSE 'succeeded' END,
       (g %% 100) + 1, CASE g %% 50 WHEN 1 THEN (g %% 100) + 1 ELSE 0 END, 'usd',
       'bench payment', 1, ((g %% 100) + 1) * 10, 'cs_bench_' || g, '',
       CASE WHEN g %% 5 = 0 THEN '' ELSE 'cs_bench_' || g END,
       CASE WHEN g %% 5 = 0 THEN 'in_bench_' || g ELSE '' END,
       'pi_bench_' || g,
       CASE WHEN g %% 5 = 0 THEN 'sub_bench_' || (g %% %(users)s) ELSE '' END,
       NULL, NULL, NULL, 'R-BENCH-' || g,
       now() - make_interval(secs => (%(total)s - g) * 30)
FROM generate_series(%(start)s, %(stop)s) AS g
"""


def seed_users(count: int) -> tuple[int, float]:
    """Insert ``count`` accounts sharing one precomputed password hash; return first id."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    started = time.perf_counter()
    password_hash = make_password("bench-password-1")  # the one PBKDF2 hash of the run
    with connection.cursor() as cursor:
        cursor.execute(USERS_SQL, {"hash": password_hash, "n": count})
        cursor.execute("SELECT min(id) FROM users_customuser WHERE email LIKE '%%@bench.test'")
        first = cursor.fetchone()[0]
    return first, time.perf_counter() - started


def seed_payments(*, start: int, stop: int, total: int, first_user: int, users: int) -> float:
    """Insert payments number ``start`` to ``stop`` (inclusive); return seconds taken."""
    from django.db import connection

    started = time.perf_counter()
    params = {
        "start": start,
        "stop": stop,
        "total": total,
        "first_user": first_user,
        "users": users,
    }
    with connection.cursor() as cursor:
        cursor.execute(PAYMENTS_SQL, params)
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


# --------------------------------------------------------------------------- measuring


def pages(first_user: int, users: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, url, query) for each page measured; the same list at both sizes."""
    from django.urls import reverse

    payments = reverse("admin_dashboard:payments")
    customer = first_user + 7  # owns payments 7, 7 + USERS, ... (about 10 at 1M / 100k)
    return [
        ("payments, no filter, page 1", payments, {}),
        ("payments, no filter, page 40", payments, {"page": 40}),
        ("payments, status failed", payments, {"status": "failed"}),
        ("payments, type subscription", payments, {"kind": "subscription"}),
        ("payments, user email", payments, {"email": "user7@bench.test"}),
        ("payments, email contains", payments, {"email": "user7777"}),
        ("payments, Stripe payment intent id", payments, {"stripe_id": "pi_bench_777"}),
        ("payments, amount 50-60", payments, {"amount_min": "50", "amount_max": "60"}),
        ("payments, last 7 days", payments, {"date_from": _days_ago(7)}),
        (
            "payments, all filters",
            payments,
            {
                "status": "succeeded",
                "kind": "credit_purchase",
                "amount_min": "1",
                "amount_max": "99",
                "date_from": _days_ago(400),
            },
        ),
        ("user page", reverse("admin_dashboard:user_detail", args=[customer]), {}),
        ("users, search by email", reverse("admin_dashboard:users"), {"email": "user77@"}),
        ("payment investigation", "investigate", {}),
    ]


def _days_ago(days: int) -> str:
    from datetime import timedelta

    from django.utils import timezone

    return (timezone.now() - timedelta(days=days)).date().isoformat()


def measure(client: Any, url: str, query: dict[str, Any], repeats: int) -> tuple[float, int, int]:
    """Median milliseconds, queries per fetch, and status of GET url?query."""
    from django.db import connection

    response = client.get(url, query)  # warm-up (templates, plans, caches)
    executed: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url, query)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(url, query)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(executed), response.status_code


def measure_all(
    client: Any,
    plan: list[tuple[str, str, dict[str, Any]]],
    repeats: int,
    latest: Callable[[], int],
) -> dict[str, tuple[float, int, int]]:
    from django.urls import reverse

    results = {}
    for label, url, query in plan:
        if url == "investigate":
            url = reverse("admin_dashboard:payment_detail", args=[latest()])
        results[label] = measure(client, url, query, repeats)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    with database_server() as server, scratch_database(server, "admin") as url:
        setup_django(url)
        from django.test import Client

        from stripe_manager.models import Payment
        from users.models import CustomUser

        staff = CustomUser.objects.create_user(
            email="staff@bench.test", password=None, is_staff=True
        )
        client = Client()
        client.force_login(staff)
        first_user, users_s = seed_users(args.users)
        small_s = seed_payments(
            start=1, stop=SMALL, total=args.payments, first_user=first_user, users=args.users
        )

        def latest() -> int:
            return Payment.objects.order_by("-id").values_list("id", flat=True)[0]

        plan = pages(first_user, args.users)
        small = measure_all(client, plan, args.repeats, latest)
        large_s = seed_payments(
            start=SMALL + 1,
            stop=args.payments,
            total=args.payments,
            first_user=first_user,
            users=args.users,
        )
        count = Payment.objects.count()
        large = measure_all(client, plan, args.repeats, latest)

    print(
        f"seeding: {args.users:,} users in {users_s:.1f} s; {SMALL:,} payments in "
        f"{small_s:.2f} s; {count - SMALL:,} more in {large_s:.1f} s (generate_series)"
    )
    header = (
        "page",
        f"{SMALL:,} payments",
        f"{count:,} payments",
        "ratio",
        "queries (small/large)",
        f"< {TARGET_MS:.0f} ms",
        "same queries",
    )
    rows = [header]
    ok = True
    for label, _, _ in plan:
        s_ms, s_q, s_status = small[label]
        l_ms, l_q, l_status = large[label]
        fast = l_ms < TARGET_MS and l_status == 200 and s_status == 200
        same = s_q == l_q
        ok = ok and fast and same
        rows.append(
            (
                label,
                f"{s_ms:.1f} ms",
                f"{l_ms:.1f} ms",
                f"{l_ms / s_ms:.2f}x",
                f"{s_q}/{l_q}",
                "yes" if fast else f"NO ({l_status})",
                "yes" if same else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
