"""Catalog sync: Stripe is the source of truth, we only pull (``sync_stripe_products``)."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction

from stripe_manager import pricing_cache
from stripe_manager.gateway import PriceInfo, get_gateway
from stripe_manager.models import StripeProduct
from stripe_manager.money import from_minor

logger = logging.getLogger(__name__)


@transaction.atomic
def catalog_apply(prices: list[PriceInfo], *, product_id: str | None = None) -> tuple[int, int]:
    """Upsert one row per active price; deactivate rows Stripe no longer lists.

    With ``product_id`` only that product's rows are considered. Returns
    (rows upserted, rows deactivated).
    """
    seen = set()
    for info in prices:
        if info.interval not in StripeProduct.Interval.values:
            logger.warning(
                "skipping price with unsupported interval", extra={"price": info.price_id}
            )
            continue
        StripeProduct.objects.update_or_create(
            stripe_price_id=info.price_id,
            defaults={
                "stripe_product_id": info.product_id,
                "name": info.name,
                "description": info.description,
                "price": from_minor(info.unit_amount, info.currency),
                "currency": info.currency,
                "interval": info.interval,
                "credit_amount": info.credit_amount or Decimal("0"),
                "display_order": info.display_order,
                "trial_days": info.trial_days,
                "trial_credit_amount": info.trial_credit_amount,
                "highlighted": info.highlight,
                "features": list(info.features),
                "active": info.credit_amount is not None and info.credit_amount > 0,
            },
        )
        seen.add(info.price_id)
    stale = StripeProduct.objects.filter(active=True).exclude(stripe_price_id__in=seen)
    if product_id is not None:
        stale = stale.filter(stripe_product_id=product_id)
    deactivated = stale.update(active=False)
    pricing_cache.forget()  # update() sends no post_save
    return len(seen), deactivated


def catalog_sync(*, product_id: str | None = None) -> tuple[int, int]:
    """Pull the active prices from the gateway into ``StripeProduct`` rows."""
    prices = get_gateway().list_prices(product_id=product_id)
    return catalog_apply(prices, product_id=product_id)
