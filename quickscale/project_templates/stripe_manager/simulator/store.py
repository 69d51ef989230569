"""The simulator's records: Stripe objects kept as JSON in ``SimulatedObject`` rows."""

from __future__ import annotations

from typing import Any

from stripe_manager import shapes
from stripe_manager.gateway import GatewayError
from stripe_manager.models import SimulatedObject, StripeProduct
from stripe_manager.money import to_minor

Obj = dict[str, Any]


def load_for_update(object_id: str, kind: str) -> Obj:
    """The ``kind`` record ``object_id``, locked until the transaction ends."""
    row = SimulatedObject.objects.select_for_update().filter(object_id=object_id, kind=kind).first()
    if row is None:
        raise GatewayError(f"The simulator has no {kind} {object_id!r}.")
    data: Obj = row.data
    return data


def load(object_id: str, kind: str) -> Obj:
    """The ``kind`` record ``object_id``, read without a lock (for previews)."""
    row = SimulatedObject.objects.filter(object_id=object_id, kind=kind).first()
    if row is None:
        raise GatewayError(f"The simulator has no {kind} {object_id!r}.")
    data: Obj = row.data
    return data


def save(object_id: str, kind: str, data: Obj) -> None:
    SimulatedObject.objects.update_or_create(
        object_id=object_id, kind=kind, defaults={"data": data}
    )


def price(price_id: str) -> Obj:
    """A simulated price; falls back to the local catalog row of that price id."""
    row = SimulatedObject.objects.filter(object_id=price_id, kind="price").first()
    if row is not None:
        data: Obj = row.data
        return data
    product = StripeProduct.objects.filter(stripe_price_id=price_id).first()
    if product is None:
        raise GatewayError(f"The simulator has no price {price_id!r}.")
    return shapes.price(
        price_id,
        product_id=product.stripe_product_id,
        unit_amount=to_minor(product.price, product.currency),
        currency=product.currency,
        interval=product.interval,
    )
