"""The landing page's pricing section (``{% pricing_section %}``, included by public/index.html)."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from common.testing.html import elements, texts

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
    """The text of each plan and pack box, in page order."""
    return [text for key, text in texts(section).items() if key.startswith("landing-")]


def _buy_link(section: str) -> str | None:
    found = re.search(r'<a [^>]*href="([^"]+)"[^>]*>See plans and buy credits</a>', section)
    return found.group(1) if found else None


def test_landing_page_shows_active_plans_and_packs_with_a_way_to_buy(client, catalog):
    section = _pricing(client)

    assert _boxes(section) == [
        "Basic $15.00 / month 500 credits every month",
        "Pro $45.00 / month 2,000 credits every month",
        "100 credits $10.00 100 credits, never expire",
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


def _catalog_queries(client) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        _pricing(client)
    return sum("stripe_manager_stripeproduct" in q["sql"] for q in queries.captured_queries)


def test_the_pricing_section_is_cached_and_follows_every_catalog_change(
    client, catalog, django_capture_on_commit_callbacks
):
    """Rendered once for all visitors; a save, a delete or a sync drops it after commit."""
    from stripe_manager.catalog import catalog_apply
    from stripe_manager.gateway import PriceInfo

    assert _catalog_queries(client) == 2
    assert _catalog_queries(client) == 0  # served from the cache

    with django_capture_on_commit_callbacks(execute=True):
        catalog["pro"].name = "Pro Plus"
        catalog["pro"].save()
    assert "Pro Plus $45.00" in _text(_pricing(client))

    with django_capture_on_commit_callbacks(execute=True):
        catalog["pack"].delete()
    assert "100 credits" not in _text(_pricing(client))

    # A sync that no longer lists Pro deactivates it with a bulk update (no post_save).
    basic = PriceInfo("price_basic", "prod_basic", "Basic", "", 1500, "usd", "month", Decimal(500))
    with django_capture_on_commit_callbacks(execute=True):
        catalog_apply([basic])
    assert _boxes(_pricing(client)) == ["Basic $15.00 / month 500 credits every month"]


def test_the_cached_section_is_kept_apart_with_payments_off(client, catalog, settings):
    assert _buy_link(_pricing(client)) is not None
    settings.STRIPE_GATEWAY = "off"
    assert _buy_link(_pricing(client)) is None
    assert "Payments are not available on this site yet." in _text(_pricing(client))


def test_this_process_serves_the_section_without_a_query_until_its_copy_expires(
    client, catalog, monkeypatch
):
    """Another process's catalog change shows here after at most LOCAL_SECONDS."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from stripe_manager import pricing_cache
    from stripe_manager.models import StripeProduct

    now = 1000.0
    monkeypatch.setattr(pricing_cache, "_clock", lambda: now)
    assert "Pro $45.00" in _text(_pricing(client))
    with CaptureQueriesContext(connection) as queries:
        _pricing(client)
    assert queries.captured_queries == []  # not even the shared cache's table

    # What another process does on a catalog change: the rows change and the
    # shared copy is dropped, but this process's copy is not told.
    StripeProduct.objects.filter(pk=catalog["pro"].pk).update(name="Pro Plus")
    cache.delete_many(list(pricing_cache._KEYS.values()))
    now += pricing_cache.LOCAL_SECONDS - 0.5
    assert "Pro $45.00" in _text(_pricing(client))

    now += 0.5  # LOCAL_SECONDS after the copy was taken
    assert "Pro Plus $45.00" in _text(_pricing(client))


def test_the_landing_page_centres_the_tiers_and_stands_out_the_highlighted_plan(client, catalog):
    catalog["pro"].highlighted = True
    catalog["pro"].save()
    section = _pricing(client)

    boxes = elements(section)
    assert "is-highlighted" in str(boxes["landing-plan-price_pro"]["class"])
    assert "is-highlighted" not in str(boxes["landing-plan-price_basic"]["class"])
    assert texts(section)["landing-plan-price_pro"].startswith("Most popular Pro $45.00")
    assert re.search(r'class="columns is-multiline is-centered"', section)


def test_a_plan_sold_monthly_and_yearly_is_one_box_with_both_prices(client, catalog):
    from stripe_manager.models import StripeProduct

    StripeProduct.objects.create(
        stripe_product_id="prod_pro",
        stripe_price_id="price_pro_yearly",
        name="Pro",
        price=Decimal("450.00"),
        interval="year",
        credit_amount=24000,
    )
    section = _pricing(client)

    assert "landing-plan-price_pro_yearly" not in elements(section)
    assert texts(section)["landing-plan-price_pro"] == (
        "Pro $45.00 / month 2,000 credits every month or $450.00 / year for 24,000 credits"
    )
