"""The demo catalog a new project starts with: a credit pack and two plans (Pro also yearly)."""

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
        "description": "For side projects: try every service.",
        "unit_amount": 1500,
        "interval": "month",
        "credits": "500",
        "order": 2,
    },
    {
        "product": "prod_sim_pro",
        "price": "price_sim_pro_monthly",
        "name": "Pro",
        "description": "For teams that run services every day.",
        "unit_amount": 4500,
        "interval": "month",
        "credits": "2000",
        "order": 3,
        "product_metadata": {
            "highlight": "true",
            "features": "Every service;API keys for your apps;Auto top-up;Priority support",
        },
    },
    {
        # A second price of the same product: the pricing page offers monthly or yearly.
        "product": "prod_sim_pro",
        "price": "price_sim_pro_yearly",
        "name": "Pro",
        "description": "For teams that run services every day.",
        "unit_amount": 45000,
        "interval": "year",
        "credits": "24000",
        "order": 3,
        "product_metadata": {
            "highlight": "true",
            "features": "Every service;API keys for your apps;Auto top-up;Priority support",
        },
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
        # Two prices may share a product: the second one leaves it as it is.
        if not SimulatedObject.objects.filter(object_id=entry["product"], kind="product").exists():
            store.save(
                entry["product"],
                "product",
                shapes.product(
                    entry["product"],
                    name=entry["name"],
                    description=entry["description"],
                    metadata=entry.get("product_metadata"),
                ),
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
