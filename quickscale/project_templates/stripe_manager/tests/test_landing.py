"""The landing page's pricing section (``{% pricing_section %}``, included by public/index.html)."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _pricing(client) -> str:
    """The HTML of the landing page's pricing section."""
    response = client.get("/")
    assert response.status_code == 200
    found = re.search(r'<section[^>]*id="pricing".*?</section>', response.content.decode(), re.S)
    assert found, "the landing page has no pricing section"
    return found.group(0)


def _boxes(section: str) -> list[str]:
    return [_text(box) for box in re.findall(r'<div class="box">(.*?)</div>', section, re.S)]


def _buy_link(section: str) -> str | None:
    found = re.search(r'<a [^>]*href="([^"]+)"[^>]*>See plans and buy credits</a>', section)
    return found.group(1) if found else None


def test_landing_page_shows_active_plans_and_packs_with_a_way_to_buy(client, catalog):
    section = _pricing(client)

    assert _boxes(section) == [
        "Basic 15.00 USD / month 500 credits every month",
        "Pro 45.00 USD / month 2000 credits every month",
        "100 credits 10.00 USD 100 credits, never expire",
    ]
    assert _buy_link(section) == reverse("stripe_manager:pricing")


def test_landing_page_without_a_catalog_says_nothing_is_on_sale(client):
    section = _pricing(client)

    assert _boxes(section) == []
    assert "No plans are on sale yet." in _text(section)


@pytest.mark.parametrize("production", [False, True])
def test_landing_page_without_payments_says_so_and_sells_nothing(
    client, catalog, settings, production
):
    settings.IS_PRODUCTION = production
    settings.STRIPE_GATEWAY = "off"  # what production with STRIPE_ENABLED off selects

    section = _pricing(client)

    assert "Payments are not available on this site yet." in _text(section)
    assert _boxes(section) == []
    assert _buy_link(section) is None
