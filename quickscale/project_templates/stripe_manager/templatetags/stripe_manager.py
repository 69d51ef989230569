"""``{% pricing_section %}``: the catalog on pages of lower apps (the landing page)."""

from __future__ import annotations

from typing import Any

from django import template

from stripe_manager import selectors
from stripe_manager.gateway import payments_enabled

register = template.Library()


@register.inclusion_tag("stripe_manager/includes/pricing_section.html", takes_context=True)
def pricing_section(context: template.Context) -> dict[str, Any]:
    """The active plans and credit packs, linking to the pricing page."""
    return {
        "plans": list(selectors.plans()),
        "packs": list(selectors.credit_packs()),
        "payments_enabled": payments_enabled(),
        "user": context.get("user"),
    }
