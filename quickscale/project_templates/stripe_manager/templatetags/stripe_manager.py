"""``{% pricing_section %}``: the catalog on pages of lower apps (the landing page).

The section is the same for every visitor, so its HTML is rendered once and
kept in Django's cache (shared by all workers) and, for a few seconds, in each
process: a landing page then costs no query at all instead of two catalog
queries and a template render. Any change to a ``StripeProduct`` (sync,
webhook, admin) drops it after its transaction commits
(``stripe_manager.pricing_cache``); the timeout bounds staleness for writes
that bypass the ORM.
"""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from stripe_manager import pricing_cache, pricing_page, selectors
from stripe_manager.gateway import payments_enabled

register = template.Library()


@register.simple_tag
def pricing_section() -> SafeString:
    """The active plans and credit packs, linking to the pricing page."""
    enabled = payments_enabled()
    html = pricing_cache.get(enabled)
    if html is None:
        html = render_to_string(
            "stripe_manager/includes/pricing_section.html",
            {
                "plans": pricing_page.landing_plans(selectors.plans()),
                "packs": list(selectors.credit_packs()),
                "payments_enabled": enabled,
            },
        )
        pricing_cache.put(enabled, html)
    return mark_safe(html)  # our own template's output, escaped when it was rendered
