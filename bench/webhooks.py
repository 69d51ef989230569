"""Webhook benchmark: statements per event type, and events/s beside an endpoint that only verifies.

The webhook answers once the verified event is stored (one row per Stripe
event id, the worker's work item); the worker applies it (``webhook_queue``).
Measured in one run, one process, one server, so the ratios mean something:

- **Statements per event type**: one delivery of each type in the life of a
  customer (subscribe, pay, buy a pack, get a refund, renew, fail, cancel),
  counted in two parts: the request (every SQL statement the POST sends,
  transaction control included) and the processing (every statement the
  worker sends for it, ``webhook_queue.apply_received_event``: BEGIN, the
  statement that takes the stored event and makes the ``ProcessedStripeEvent``
  claim, the effect, the receipt's outbox row, COMMIT), and the request of
  the same delivery again (a duplicate: nothing to apply).
- **Rates**: for the two types every paying customer sends, a stream of
  ``checkout.session.completed`` (credit purchases) and one of ``invoice.paid``
  (plan renewals), 10% of each re-deliveries of earlier events:
  the same bodies POSTed through Django's full middleware stack to a view
  that only verifies the signature and answers 200, and to
  ``/stripe/webhook/`` (verify, store once), in alternating rounds (a slice
  to each in turn, so a machine whose load moves weighs on both alike);
  then the worker's throughput
  applying what the stream stored, with the worker's own step
  (``SourceRunner.run_source``), so the work the request no longer does is
  measured too (grants through the ledger, the payment, the receipt queued).

Targets (the webhooks issue): at most 8 statements for a first delivery of
either type, the request's and the worker's together, and at least 0.2x the
verify-only rate.

Runs against a scratch database on ``DATABASE_URL``'s server (dropped
afterwards), or on a throwaway embedded PostgreSQL when it is unset.

    .venv/bin/python bench/webhooks.py [--events 1000] [--duplicates 0.1] [--rounds 10]
        [--show-sql TYPE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchdb import TEMPLATE, database_server, scratch_database

SECRET = "whsec_bench"
TARGET_STATEMENTS = 8
TARGET_RATIO = 0.2
TIMED_TYPES = ("checkout.session.completed", "invoice.paid")
DAY = 86_400
Event = dict[str, Any]


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["STRIPE_WEBHOOK_SECRET"] = SECRET
    os.environ["LOW_CREDIT_THRESHOLD"] = "0"
    sys.path.insert(0, str(TEMPLATE))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)  # the pricing section and rate limits cache


def install_baseline_urls() -> None:
    """The project's URLs plus ``/bench/verify-only/`` (signature check, then 200)."""
    from django.conf import settings
    from django.http import HttpRequest, HttpResponse
    from django.urls import include, path
    from django.views.decorators.csrf import csrf_exempt

    from stripe_manager import signing

    @csrf_exempt
    def verify_only(request: HttpRequest) -> HttpResponse:
        try:
            signing.verify(request.body, request.headers.get("Stripe-Signature", ""), SECRET)
        except signing.SignatureError:
            return HttpResponse(status=400)
        return HttpResponse("ok")

    module = types.ModuleType("bench_webhook_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("bench/verify-only/", verify_only),
        path("", include(settings.ROOT_URLCONF)),
    ]
    sys.modules["bench_webhook_urls"] = module
    settings.ROOT_URLCONF = "bench_webhook_urls"


@dataclass
class Catalog:
    """What the events refer to: a pack, a plan and their Stripe price objects."""

    pack_price: Event
    plan_price: Event
    plan_credits: int


def make_catalog() -> Catalog:
    from decimal import Decimal

    from stripe_manager import shapes
    from stripe_manager.models import StripeProduct

    StripeProduct.objects.create(
        name="100 credits",
        price=Decimal("10.00"),
        interval="none",
        credit_amount=100,
        stripe_product_id="prod_bench_pack",
        stripe_price_id="price_bench_pack",
    )
    StripeProduct.objects.create(
        name="Pro",
        price=Decimal("20.00"),
        interval="month",
        credit_amount=500,
        stripe_product_id="prod_bench_plan",
        stripe_price_id="price_bench_plan",
    )
    return Catalog(
        pack_price=shapes.price("price_bench_pack", product_id="prod_bench_pack", unit_amount=1000),
        plan_price=shapes.price(
            "price_bench_plan", product_id="prod_bench_plan", unit_amount=2000, interval="month"
        ),
        plan_credits=500,
    )


def make_customers(count: int, prefix: str) -> list[tuple[str, int]]:
    """``count`` users with a Stripe customer each: (customer id, user id)."""
    from stripe_manager.models import StripeCustomer
    from users.models import CustomUser

    customers = []
    for i in range(count):
        user = CustomUser.objects.create_user(email=f"{prefix}{i}@example.com", password=None)
        customer = StripeCustomer.objects.create(user=user, stripe_customer_id=f"cus_{prefix}{i}")
        customers.append((customer.stripe_customer_id, user.pk))
    return customers


def purchase(catalog: Catalog, customer: tuple[str, int], n: str) -> Event:
    from stripe_manager import shapes

    customer_id, user_id = customer
    return shapes.event(
        "checkout.session.completed",
        shapes.checkout_session(
            f"cs_{n}",
            customer=customer_id,
            mode="payment",
            amount_total=1000,
            metadata={
                "user_id": str(user_id),
                "price_id": catalog.pack_price["id"],
                "quantity": "1",
                "credits": "100",
            },
            payment_intent=f"pi_{n}",
        ),
        event_id=f"evt_cs_{n}",
    )


def subscribed(catalog: Catalog, customer: tuple[str, int], start: int) -> Event:
    from stripe_manager import shapes

    customer_id = customer[0]
    return shapes.event(
        "customer.subscription.created",
        shapes.subscription(
            f"sub_{customer_id}",
            customer=customer_id,
            price_obj=catalog.plan_price,
            item_id=f"si_{customer_id}",
            period_start=start,
            period_end=start + 30 * DAY,
        ),
        event_id=f"evt_sub_{customer_id}",
        created=start,
    )


def renewal(catalog: Catalog, customer: tuple[str, int], period: int, start: int) -> Event:
    """``invoice.paid`` of ``customer``'s ``period``-th month (0: the first invoice)."""
    from stripe_manager import shapes

    customer_id = customer[0]
    begins = start + period * 30 * DAY
    line = shapes.invoice_line(
        price_obj=catalog.plan_price, amount=2000, period_start=begins, period_end=begins + 30 * DAY
    )
    invoice_id = f"in_{customer_id}_{period}"
    return shapes.event(
        "invoice.paid",
        shapes.invoice(
            invoice_id,
            customer=customer_id,
            subscription_id=f"sub_{customer_id}",
            lines=[line],
            billing_reason="subscription_create" if period == 0 else "subscription_cycle",
            created=begins,
        ),
        event_id=f"evt_{invoice_id}",
        created=begins,
    )


class Poster:
    """POSTs signed bodies through Django's test client (the whole middleware stack)."""

    def __init__(self) -> None:
        from django.test import Client

        self.client = Client()

    def post(self, path: str, body: bytes) -> int:
        from stripe_manager import signing

        response = self.client.post(
            path,
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signing.sign(body, SECRET),
        )
        return int(response.status_code)

    def counted(self, event: Event) -> tuple[int, list[str]]:
        """POST ``event`` once (nothing applied); its status code and every statement it sent."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        connection.queries_log.clear()  # a full log (9000) would make the capture empty
        with CaptureQueriesContext(connection) as queries:
            status = self.post("/stripe/webhook/", json.dumps(event).encode())
        return status, [query["sql"] for query in queries.captured_queries]


def processed(event: Event) -> tuple[str, list[str]]:
    """Apply the stored ``event`` as the worker's task does; the outcome and its statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from stripe_manager.webhook_queue import apply_received_event

    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        outcome = apply_received_event(str(event["id"]))
    return outcome, [query["sql"] for query in queries.captured_queries]


def run_worker() -> int:
    """Apply every due event as the worker does; how many.

    ``common.task_worker.SourceRunner.run_source``, the worker's own step for
    its work sources (``WORKER_SOURCES``: the oldest due event claimed with
    ``SKIP LOCKED``, then applied), in a loop without its waits. The receipts
    the events queue are left in the outbox (the worker's email thread sends them).
    """
    from common import task_worker
    from stripe_manager.webhook_queue import apply_next_due_event

    # As `manage.py worker` does: it keeps its connection between items (CONN_MAX_AGE).
    task_worker._keep_connections()
    runner = task_worker.SourceRunner(sources=[apply_next_due_event], listen=False)
    applied = 0
    while runner.run_source():
        applied += 1
    return applied


def life_of_a_customer(catalog: Catalog, customer: tuple[str, int]) -> list[Event]:
    """One delivery of each common event type, in the order a customer's life sends them."""
    from stripe_manager import shapes

    customer_id = customer[0]
    start = int(time.time()) - 5 * DAY
    first = renewal(catalog, customer, 0, start)
    invoice_id = first["data"]["object"]["id"]
    subscription = subscribed(catalog, customer, start)["data"]["object"]
    pack = purchase(catalog, customer, f"life_{customer_id}")
    pack_intent = pack["data"]["object"]["payment_intent"]

    def sub_event(event_type: str, **changes: Any) -> Event:
        return shapes.event(event_type, {**subscription, **changes}, created=int(time.time()))

    upcoming = dict(first["data"]["object"], id="upcoming", status="draft")
    failed = dict(renewal(catalog, customer, 1, start)["data"]["object"], status="open")
    failed["amount_paid"] = 0
    return [
        subscribed(catalog, customer, start),
        first,
        shapes.event(
            "invoice_payment.paid",
            shapes.invoice_payment(
                f"inpay_{customer_id}",
                invoice=invoice_id,
                payment_intent=f"pi_{invoice_id}",
                amount=2000,
            ),
        ),
        pack,
        shapes.event(
            "refund.created",
            shapes.refund(
                f"re_{customer_id}",
                amount=500,
                charge=f"ch_{customer_id}",
                payment_intent=pack_intent,
                customer=customer_id,
            ),
        ),
        sub_event("customer.subscription.updated", cancel_at_period_end=True),
        shapes.event("invoice.upcoming", upcoming),
        shapes.event("invoice.payment_failed", failed),
        sub_event("customer.subscription.deleted", status="canceled"),
        shapes.event("price.updated", dict(catalog.pack_price, metadata={"credits": "100"})),
    ]


@dataclass
class Row:
    event_type: str
    status: int
    request: int
    processing: int
    outcome: str
    duplicate: int


def statements_table(poster: Poster, catalog: Catalog, show: str) -> list[Row]:
    """Per event type: the request's statements, the processing's, and a duplicate request's."""
    customer = make_customers(1, "life")[0]
    rows = []
    for event in life_of_a_customer(catalog, customer):
        status, request = poster.counted(event)
        outcome, processing = processed(event)
        _, again = poster.counted(event)
        rows.append(
            Row(str(event["type"]), status, len(request), len(processing), outcome, len(again))
        )
        if event["type"] == show:
            print(f"-- statements of one {show} delivery (request, then processing):")
            for sql in request + processing:
                print("  ", " ".join(sql.split())[:160])
    return rows


def stream(events: list[Event], duplicates: float, seed: int) -> list[bytes]:
    """The events in order, then re-deliveries of some (``duplicates`` of the whole)."""
    rng = random.Random(seed)
    extra = [rng.choice(events) for _ in range(int(len(events) * duplicates / (1 - duplicates)))]
    return [json.dumps(event).encode() for event in events + extra]


def timed(poster: Poster, path: str, bodies: list[bytes], codes: dict[int, int]) -> float:
    """Seconds to POST ``bodies`` to ``path``; their status codes counted into ``codes``."""
    started = time.perf_counter()
    for body in bodies:
        code = poster.post(path, body)
        codes[code] = codes.get(code, 0) + 1
    return time.perf_counter() - started


def alternating(
    poster: Poster, bodies: list[bytes], rounds: int
) -> tuple[float, dict[int, int], float, dict[int, int], list[float]]:
    """The stream in ``rounds`` slices, each POSTed to the verify-only view, then to the
    webhook: a machine that gets busier or quieter during the run weighs on both alike.
    Total seconds and status codes of each, and each round's ratio."""
    base_codes: dict[int, int] = {}
    hook_codes: dict[int, int] = {}
    base_s = hook_s = 0.0
    ratios = []
    size = -(-len(bodies) // rounds)
    for start in range(0, len(bodies), size):
        chunk = bodies[start : start + size]
        base = timed(poster, "/bench/verify-only/", chunk, base_codes)
        hook = timed(poster, "/stripe/webhook/", chunk, hook_codes)
        base_s, hook_s = base_s + base, hook_s + hook
        ratios.append(base / hook)
    return base_s, base_codes, hook_s, hook_codes, ratios


def sampled_statements(poster: Poster, make: Callable[[int], Event], count: int) -> tuple[int, int]:
    """Median statements (request, processing) of ``count`` first deliveries, outside the runs."""
    request, processing = [], []
    for i in range(count):
        event = make(i)
        request.append(len(poster.counted(event)[1]))
        processing.append(len(processed(event)[1]))
    run_worker()
    return int(statistics.median(request)), int(statistics.median(processing))


@dataclass
class Rates:
    event_type: str
    deliveries: int
    request: int
    processing: int
    base_s: float
    base_codes: dict[int, int]
    hook_s: float
    hook_codes: dict[int, int]
    applied: int
    work_s: float
    ratios: list[float]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="deliveries per timed stream")
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument(
        "--rounds", type=int, default=10, help="alternating verify-only/webhook slices"
    )
    parser.add_argument("--show-sql", default="", metavar="TYPE", help="print one delivery's SQL")
    args = parser.parse_args()
    with database_server() as server, scratch_database(server, "webhooks") as url:
        setup_django(url)
        install_baseline_urls()
        from credits.models import LedgerEntry
        from stripe_manager.models import ProcessedStripeEvent, ReceivedStripeEvent

        catalog = make_catalog()
        poster = Poster()
        life = statements_table(poster, catalog, args.show_sql)

        unique = args.events - int(args.events * args.duplicates)
        now = int(time.time())
        buyers = make_customers(50, "buyer")
        subscribers = make_customers(50, "subscriber")
        sample = make_customers(20, "sample")
        for customer in subscribers + sample:
            poster.post("/stripe/webhook/", json.dumps(subscribed(catalog, customer, now)).encode())
        run_worker()
        made: dict[str, Callable[[int], Event]] = {
            "checkout.session.completed": lambda i: purchase(catalog, buyers[i % 50], str(i)),
            # Customer i % 50 pays its (i // 50)-th month: in order per subscription.
            "invoice.paid": lambda i: renewal(catalog, subscribers[i % 50], i // 50, now),
        }
        sample_made: dict[str, Callable[[int], Event]] = {
            "checkout.session.completed": lambda i: purchase(catalog, sample[i], f"s{i}"),
            "invoice.paid": lambda i: renewal(catalog, sample[i], 0, now),
        }
        rates = []
        for index, event_type in enumerate(TIMED_TYPES):
            request, processing = sampled_statements(poster, sample_made[event_type], len(sample))
            bodies = stream([made[event_type](i) for i in range(unique)], args.duplicates, index)
            baseline_s, baseline_codes, webhook_s, webhook_codes, ratios = alternating(
                poster, bodies, args.rounds
            )
            started = time.perf_counter()
            applied = run_worker()
            work_s = time.perf_counter() - started
            rates.append(
                Rates(
                    event_type,
                    len(bodies),
                    request,
                    processing,
                    baseline_s,
                    baseline_codes,
                    webhook_s,
                    webhook_codes,
                    applied,
                    work_s,
                    ratios,
                )
            )

        print(
            f"{'event type':<34}{'status':>7}{'request':>9}{'processing':>12}{'total':>7}"
            f"{'duplicate':>11}  outcome"
        )
        for row in life:
            print(
                f"{row.event_type:<34}{row.status:>7}{row.request:>9}{row.processing:>12}"
                f"{row.request + row.processing:>7}{row.duplicate:>11}  {row.outcome}"
            )
        print(
            "\n(statements: request = every statement the POST sends, transaction control "
            "included; processing = every statement the worker sends to apply it "
            "(apply_received_event: BEGIN, one statement that takes the stored event and "
            "claims it, the effect, COMMIT); "
            "duplicate = the same POST again, which leaves nothing to apply)\n"
        )
        ok = True
        header = (
            f"{'stream':<28}{'deliveries':>11}{'stmts req+proc':>16}{'verify-only/s':>15}"
            f"{'webhook/s':>11}{'ratio':>8}{'applied/s':>11}"
        )
        print(f"{header}  status codes (verify-only; webhook); events applied")
        for r in rates:
            ratio = (r.deliveries / r.hook_s) / (r.deliveries / r.base_s)
            met = r.request + r.processing <= TARGET_STATEMENTS and ratio >= TARGET_RATIO
            ok = ok and met and set(r.hook_codes) == {200} and r.applied == unique
            statements = f"{r.request}+{r.processing}={r.request + r.processing}"
            print(
                f"{r.event_type:<28}{r.deliveries:>11}{statements:>16}"
                f"{r.deliveries / r.base_s:>15.0f}{r.deliveries / r.hook_s:>11.0f}{ratio:>7.2f}x"
                f"{r.applied / r.work_s:>11.0f}  {r.base_codes}; {r.hook_codes}; {r.applied}"
            )
            print(
                f"{'':<28}ratio per round: min {min(r.ratios):.2f}, median "
                f"{statistics.median(r.ratios):.2f}, max {max(r.ratios):.2f} "
                f"({len(r.ratios)} rounds)"
            )
        pending = ReceivedStripeEvent.objects.exclude(state="processed").count()
        ok = ok and pending == 0
        print(
            f"\nwebhook/s: the POST (verify, store once) against the verify-only view, in "
            f"alternating rounds of the same bodies; "
            f"applied/s: the worker applying the stream's unique events (its run_source step).\n"
            f"targets: <= {TARGET_STATEMENTS} statements (request and processing) and >= "
            f"{TARGET_RATIO}x "
            f"for each stream: {'met' if ok else 'MISSED'}. "
            f"{ReceivedStripeEvent.objects.count()} events stored once, {pending} not applied, "
            f"{ProcessedStripeEvent.objects.count()} applied once, "
            f"{LedgerEntry.objects.filter(kind='grant').count()} grants."
        )
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
