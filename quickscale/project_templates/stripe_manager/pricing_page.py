"""What the pricing page shows beyond the catalog rows: period switch and pack quantities."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from stripe_manager.models import StripeProduct


@dataclass(frozen=True)
class PlanCard:
    """One plan price on the page; ``period`` is set when its product has both periods."""

    product: StripeProduct
    period: str = ""  # "month" or "year" when the monthly/yearly switch decides; else ""


@dataclass(frozen=True)
class PackCard:
    """One credit pack and how many of it one purchase may hold (MIN/MAX_CREDIT_PURCHASE)."""

    product: StripeProduct
    min_quantity: int
    max_quantity: int
    quantity: int  # the quantity the box starts with

    @property
    def on_sale(self) -> bool:
        return self.min_quantity <= self.max_quantity

    @property
    def min_credits(self) -> Decimal:
        return self.product.credit_amount * self.min_quantity

    @property
    def max_credits(self) -> Decimal:
        return self.product.credit_amount * self.max_quantity


def plan_cards(plans: Iterable[StripeProduct]) -> list[PlanCard]:
    """Each plan price; a product sold both monthly and yearly gets the switch."""
    plans = list(plans)
    periods: dict[str, set[str]] = defaultdict(set)
    for plan in plans:
        periods[plan.stripe_product_id].add(plan.interval)
    switched = {
        product_id
        for product_id, found in periods.items()
        if {StripeProduct.Interval.MONTH, StripeProduct.Interval.YEAR} <= found
    }
    return [
        PlanCard(plan, period=plan.interval if plan.stripe_product_id in switched else "")
        for plan in plans
    ]


def pack_cards(
    packs: Iterable[StripeProduct], *, chosen_price: str = "", chosen_quantity: int | None = None
) -> list[PackCard]:
    """Each pack with the quantities one purchase allows; ``chosen_*`` pre-fills one box."""
    cards = []
    for pack in packs:
        low = max(1, math.ceil(Decimal(settings.MIN_CREDIT_PURCHASE) / pack.credit_amount))
        high = math.floor(Decimal(settings.MAX_CREDIT_PURCHASE) / pack.credit_amount)
        quantity = low
        chosen = chosen_quantity if pack.stripe_price_id == chosen_price else None
        if chosen is not None and low <= chosen <= high:
            quantity = chosen
        cards.append(PackCard(pack, min_quantity=low, max_quantity=high, quantity=quantity))
    return cards


def shows_yearly_first(current: StripeProduct | None) -> bool:
    """The switch starts on the subscriber's own period, so their plan card is in view."""
    return current is not None and current.interval == StripeProduct.Interval.YEAR


def purchase_range(cards: Iterable[PackCard]) -> tuple[Decimal, Decimal] | None:
    """The fewest and most credits one purchase of the packs on sale can buy."""
    on_sale = [card for card in cards if card.on_sale]
    if not on_sale:
        return None
    return min(card.min_credits for card in on_sale), max(card.max_credits for card in on_sale)


def landing_plans(
    plans: Iterable[StripeProduct],
) -> list[tuple[StripeProduct, StripeProduct | None]]:
    """One box per plan product for the landing page: its monthly price and yearly one.

    A product sold only yearly keeps its yearly price as the box's own.
    """
    cards = plan_cards(plans)
    yearly = {
        card.product.stripe_product_id: card.product for card in cards if card.period == "year"
    }
    return [
        (card.product, yearly.get(card.product.stripe_product_id) if card.period else None)
        for card in cards
        if card.period != "year"
    ]
