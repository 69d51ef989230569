"""Webhook benchmark: statements per event type, and events/s beside an endpoint that only verifies.

Measured in one run, one process, one server, so the ratios mean something:

- **Statements per event type**: one delivery of each type in the life of a
  customer (subscribe, pay, buy a pack, get a refund, renew, fail, cancel),
  every SQL statement the request sends counted, transaction control and
  after-commit work included, and the same delivery again (a duplicate).
- **Rates**: for the two types every paying customer sends, a stream of
  ``checkout.session.completed`` (credit purchases) and one of ``invoice.paid``
  (plan renewals), 10% of each re-deliveries of earlier events, POSTed through
  Django's full middleware stack to ``/stripe/webhook/`` (verify, dedupe,
  grant through the ledger, record the payment, queue the receipt, in one
  transaction), and the same bodies to a view that only verifies the signature
  and answers 200.

Targets (the webhooks issue): at most 8 statements for a first delivery of
either type, and at least 0.2x the verify-only rate.

Runs against a scratch database on ``DATABASE_URL``'s server (dropped
afterwards), or on a throwaway embedded PostgreSQL when it is unset.

    .venv/bin/python bench/webhooks.py [--events 1000] [--duplicates 0.1] [--show-sql TYPE]
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
        """Deliver ``event`` once; its status code and every statement it sent."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            status = self.post("/stripe/webhook/", json.dumps(event).encode())
        return status, [query["sql"] for query in queries.captured_queries]


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


def statements_table(
    poster: Poster, catalog: Catalog, show: str
) -> list[tuple[str, int, int, int]]:
    """Per event type: (type, status, statements first delivery, statements duplicate)."""
    customer = make_customers(1, "life")[0]
    rows = []
    for event in life_of_a_customer(catalog, customer):
        status, first = poster.counted(event)
        _, again = poster.counted(event)
        rows.append((str(event["type"]), status, len(first), len(again)))
        if event["type"] == show:
            print(f"-- statements of one {show} delivery:")
            for sql in first:
                print("  ", " ".join(sql.split())[:160])
    return rows


def stream(events: list[Event], duplicates: float, seed: int) -> list[bytes]:
    """The events in order, then re-deliveries of some (``duplicates`` of the whole)."""
    rng = random.Random(seed)
    extra = [rng.choice(events) for _ in range(int(len(events) * duplicates / (1 - duplicates)))]
    return [json.dumps(event).encode() for event in events + extra]


def timed(poster: Poster, path: str, bodies: list[bytes]) -> tuple[float, dict[int, int]]:
    codes: dict[int, int] = {}
    started = time.perf_counter()
    for body in bodies:
        code = poster.post(path, body)
        codes[code] = codes.get(code, 0) + 1
    return time.perf_counter() - started, codes


def sampled_statements(poster: Poster, make: Callable[[int], Event], count: int) -> int:
    """Median statements of ``count`` first deliveries, made outside the timed run."""
    return int(statistics.median(len(poster.counted(make(i))[1]) for i in range(count)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="deliveries per timed stream")
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument("--show-sql", default="", metavar="TYPE", help="print one delivery's SQL")
    args = parser.parse_args()
    with database_server() as server, scratch_database(server, "webhooks") as url:
        setup_django(url)
        install_baseline_urls()
        from credits.models import LedgerEntry
        from stripe_manager.models import ProcessedStripeEvent

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
            statements = sampled_statements(poster, sample_made[event_type], len(sample))
            bodies = stream([made[event_type](i) for i in range(unique)], args.duplicates, index)
            baseline_s, baseline_codes = timed(poster, "/bench/verify-only/", bodies)
            webhook_s, webhook_codes = timed(poster, "/stripe/webhook/", bodies)
            rates.append(
                (
                    event_type,
                    len(bodies),
                    statements,
                    baseline_s,
                    baseline_codes,
                    webhook_s,
                    webhook_codes,
                )
            )

        print(f"{'event type':<40}{'status':>7}{'statements':>12}{'duplicate':>11}")
        for event_type, status, first, again in life:
            print(f"{event_type:<40}{status:>7}{first:>12}{again:>11}")
        print(
            "\n(every statement a delivery sends, BEGIN/COMMIT and after-commit work included; "
            "duplicate: the same delivery again)\n"
        )
        ok = True
        header = (
            f"{'stream':<28}{'deliveries':>11}{'stmts':>7}{'verify-only/s':>15}{'webhook/s':>11}"
        )
        print(f"{header}{'ratio':>8}  status codes (verify-only; webhook)")
        for event_type, n, statements, base_s, base_codes, hook_s, hook_codes in rates:
            ratio = (n / hook_s) / (n / base_s)
            met = statements <= TARGET_STATEMENTS and ratio >= TARGET_RATIO
            ok = ok and met and set(hook_codes) == {200}
            print(
                f"{event_type:<28}{n:>11}{statements:>7}{n / base_s:>15.0f}{n / hook_s:>11.0f}"
                f"{ratio:>7.2f}x  {base_codes}; {hook_codes}"
            )
        print(
            f"\ntargets: <= {TARGET_STATEMENTS} statements and >= {TARGET_RATIO}x for each stream: "
            f"{'met' if ok else 'MISSED'}. {ProcessedStripeEvent.objects.count()} events stored "
            f"once, {LedgerEntry.objects.filter(kind='grant').count()} grants."
        )
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
