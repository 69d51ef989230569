"""The demo catalog a new project starts with: a credit pack and two monthly plans."""

from __future__ import annotations

from django.db import transaction

from stripe_manager import shapes
from stripe_manager.models import SimulatedObject
from stripe_manager.simulator import store

DEMO_CATALOG: list[store.Obj] = [
    {
        "product": "prod_sim_credits",
        "price": "price_sim_credits_100",
        "name": "100 credits",
        "description": "A pack of 100 pay-as-you-go credits that never expire.",
        "unit_amount": 1000,
        "interval": "none",
        "credits": "100",
        "order": 1,
    },
    {
        "product": "prod_sim_basic",
        "price": "price_sim_basic_monthly",
        "name": "Basic",
        "description": "500 credits every month.",
        "unit_amount": 1500,
        "interval": "month",
        "credits": "500",
        "order": 2,
    },
    {
        "product": "prod_sim_pro",
        "price": "price_sim_pro_monthly",
        "name": "Pro",
        "description": "2,000 credits every month.",
        "unit_amount": 4500,
        "interval": "month",
        "credits": "2000",
        "order": 3,
    },
]


@transaction.atomic
def seed_demo_catalog() -> int:
    """Create the simulator's demo products and prices that are missing; return how many.

    The local catalog (``StripeProduct``) is then pulled from the simulator like
    any Stripe account's (``catalog_sync``).
    """
    created = 0
    for entry in DEMO_CATALOG:
        if SimulatedObject.objects.filter(object_id=entry["price"], kind="price").exists():
            continue
        metadata = {"credit_amount": entry["credits"], "display_order": str(entry["order"])}
        store.save(
            entry["product"],
            "product",
            shapes.product(entry["product"], name=entry["name"], description=entry["description"]),
        )
        store.save(
            entry["price"],
            "price",
            shapes.price(
                entry["price"],
                product_id=entry["product"],
                unit_amount=entry["unit_amount"],
                interval=entry["interval"],
                metadata=metadata,
            ),
        )
        created += 1
    return created
