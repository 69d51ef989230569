"""Webhook benchmark: events processed per second vs an endpoint that only verifies signatures.

One run, one process, one server: 1,000 signed Stripe-shaped events (credit
purchases, 10% of them re-deliveries of earlier ones) are POSTed through
Django's full middleware stack to ``/stripe/webhook/`` (verify, dedupe, grant
through the ledger, record the payment, in one transaction), and the same
1,000 bodies to a baseline view that only verifies the signature and answers
200. The ratio is what processing costs on top of verification.

Runs against a scratch database on ``DATABASE_URL``'s server (dropped
afterwards), or on a throwaway embedded PostgreSQL when it is unset.

    .venv/bin/python bench/webhooks.py [--events 1000] [--duplicates 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import types
from typing import Any

from benchdb import TEMPLATE, database_server, scratch_database

SECRET = "whsec_bench"


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


def make_events(count: int, duplicates: float) -> list[dict[str, Any]]:
    from decimal import Decimal

    from stripe_manager import shapes
    from stripe_manager.models import StripeCustomer, StripeProduct
    from users.models import CustomUser

    pack = StripeProduct.objects.create(
        name="100 credits",
        price=Decimal("10.00"),
        interval="none",
        credit_amount=100,
        stripe_product_id="prod_bench",
        stripe_price_id="price_bench",
    )
    customers = []
    for i in range(50):
        user = CustomUser.objects.create_user(email=f"bench{i}@example.com", password=None)
        customers.append(StripeCustomer.objects.create(user=user, stripe_customer_id=f"cus_b{i}"))
    rng = random.Random(7)
    unique = count - int(count * duplicates)
    events = []
    for i in range(unique):
        customer = customers[i % len(customers)]
        events.append(
            shapes.event(
                "checkout.session.completed",
                shapes.checkout_session(
                    f"cs_bench_{i}",
                    customer=customer.stripe_customer_id,
                    mode="payment",
                    amount_total=1000,
                    metadata={
                        "user_id": str(customer.user_id),
                        "price_id": pack.stripe_price_id,
                        "quantity": "1",
                        "credits": "100",
                    },
                    payment_intent=f"pi_bench_{i}",
                ),
                event_id=f"evt_bench_{i}",
            )
        )
    events += [rng.choice(events) for _ in range(count - unique)]
    rng.shuffle(events)
    return events


def run(path: str, bodies: list[bytes]) -> tuple[float, dict[int, int]]:
    from django.test import Client

    from stripe_manager import signing

    client = Client()
    codes: dict[int, int] = {}
    started = time.perf_counter()
    for body in bodies:
        response = client.post(
            path,
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signing.sign(body, SECRET),
        )
        codes[response.status_code] = codes.get(response.status_code, 0) + 1
    return time.perf_counter() - started, codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--duplicates", type=float, default=0.1)
    args = parser.parse_args()
    with database_server() as server, scratch_database(server, "webhooks") as url:
        setup_django(url)
        install_baseline_urls()
        from credits.models import CreditLot
        from stripe_manager.models import ProcessedStripeEvent

        events = make_events(args.events, args.duplicates)
        bodies = [json.dumps(event).encode() for event in events]
        baseline_s, baseline_codes = run("/bench/verify-only/", bodies)
        webhook_s, webhook_codes = run("/stripe/webhook/", bodies)
        n = len(bodies)
        unique = ProcessedStripeEvent.objects.count()
        lots = CreditLot.objects.count()
        rows = [
            ("verify-only baseline", baseline_s, n / baseline_s, baseline_codes),
            ("/stripe/webhook/", webhook_s, n / webhook_s, webhook_codes),
        ]
        print(f"{'endpoint':<24}{'seconds':>10}{'events/s':>12}  status codes")
        for name, seconds, rate, codes in rows:
            print(f"{name:<24}{seconds:>10.2f}{rate:>12.0f}  {codes}")
        print(
            f"ratio webhook/baseline: {(n / webhook_s) / (n / baseline_s):.2f}x; "
            f"{unique} events processed once, {lots} credit lots for {n} deliveries"
        )


if __name__ == "__main__":
    main()
