"""``{% load formatting %}``: the template side of ``common.formatting``.

``{{ payment.amount|money:payment.currency }}`` → ``$1,234.50``;
``{{ product.price_per_credit|unit_price:product.currency }}`` → ``$0.0025``;
``{{ balance.available|credits }}`` → ``2,000``;
``{{ lot.remaining|credit_count }}`` → ``1 credit`` / ``2,000 credits``.
"""

from django import template

from common.formatting import format_credit_count, format_credits, format_money

register = template.Library()


@register.filter
def money(value: object, currency: str = "usd") -> str:
    """An amount of money in ``currency`` (ISO code; USD when left out)."""
    return format_money(value, str(currency or "usd"))


@register.filter
def unit_price(value: object, currency: str = "usd") -> str:
    """A price per unit (per credit), keeping up to 4 decimals: ``$0.0025``."""
    return format_money(value, str(currency or "usd"), max_places=4)


@register.filter
def credits(value: object) -> str:
    """A number of credits: ``2,000``, ``0.5``; no ``.00``."""
    return format_credits(value)


@register.filter
def credit_count(value: object) -> str:
    """A number of credits with its unit: ``1 credit``, ``2,000 credits``."""
    return format_credit_count(value)
