"""The pricing page sells (#19): centred tiers, a highlighted plan with its features,
a monthly/yearly switch, pack quantities for everyone, the current plan as a badge."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command

from common.testing.html import elements, texts
from stripe_manager.catalog import catalog_sync
from stripe_manager.gateway import CatalogError
from stripe_manager.models import SimulatedObject, StripeProduct, UserSubscription

pytestmark = pytest.mark.django_db

PRO_MONTHLY = "price_sim_pro_monthly"
PRO_YEARLY = "price_sim_pro_yearly"
BASIC = "price_sim_basic_monthly"
PACK = "price_sim_credits_100"


@pytest.fixture
def demo(db):
    call_command("seed_demo_catalog", stdout=None)


def set_metadata(product_id: str, **metadata: str) -> None:
    row = SimulatedObject.objects.get(object_id=product_id, kind="product")
    row.data["metadata"].update(metadata)
    row.save()


def subscribe(user, price_id: str) -> None:
    UserSubscription.objects.create(
        user=user,
        stripe_subscription_id=f"sub_{price_id}",
        price_id=price_id,
        product=StripeProduct.objects.get(stripe_price_id=price_id),
        status="active",
    )


def page(client, url: str = "/pricing/") -> str:
    response = client.get(url)
    assert response.status_code == 200
    html: str = response.content.decode()
    return html


# --------------------------------------------------------------------------- catalog metadata


def test_the_sync_reads_highlight_and_trimmed_features_from_the_product(demo):
    set_metadata("prod_sim_basic", highlight="TRUE", features=" Fast ;; Friendly  ;")
    catalog_sync()
    basic = StripeProduct.objects.get(stripe_price_id=BASIC)
    assert (basic.highlighted, basic.features) == (True, ["Fast", "Friendly"])
    pack = StripeProduct.objects.get(stripe_price_id=PACK)
    assert (pack.highlighted, pack.features) == (False, [])


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"highlight": "yes"}, "highlight must be true or false, not 'yes'"),
        ({"features": ";".join(f"f{n}" for n in range(9))}, "at most 8 items"),
        ({"features": "x" * 81}, "each at most 80 characters"),
    ],
)
def test_bad_highlight_or_features_stop_the_sync_and_change_nothing(demo, metadata, message):
    set_metadata("prod_sim_basic", credit_amount="999", **metadata)
    before = list(StripeProduct.objects.values())
    with pytest.raises(CatalogError, match=message) as raised:
        catalog_sync()
    assert "prod_sim_basic" in str(raised.value)
    assert list(StripeProduct.objects.values()) == before


def test_the_demo_catalog_highlights_pro_with_features_and_sells_it_yearly_too(demo):
    monthly = StripeProduct.objects.get(stripe_price_id=PRO_MONTHLY)
    yearly = StripeProduct.objects.get(stripe_price_id=PRO_YEARLY)
    assert monthly.highlighted and yearly.highlighted
    assert monthly.features == yearly.features
    assert len(monthly.features) == 4
    assert (yearly.interval, yearly.price, yearly.credit_amount) == (
        "year",
        Decimal("450.00"),
        Decimal("24000.00"),
    )


# --------------------------------------------------------------------------- the plans


def test_tiers_are_centred_and_the_highlighted_plan_stands_out_with_its_features(client, demo):
    html = page(client)
    found, text = elements(html), texts(html)
    assert "is-centered" in str(found["plan-tiers"]["class"])
    assert "is-highlighted" in str(found[f"plan-{PRO_MONTHLY}"]["class"])
    assert "is-highlighted" not in str(found[f"plan-{BASIC}"]["class"])
    assert text[f"popular-{PRO_MONTHLY}"] == "Most popular"
    assert f"popular-{BASIC}" not in found
    assert text[f"features-{PRO_MONTHLY}"] == (
        "Every service API keys for your apps Auto top-up Priority support"
    )
    assert f"features-{BASIC}" not in found


def test_each_plan_says_its_credits_once(client, demo):
    text = texts(page(client))
    for price_id, credits in [(BASIC, "500 credits"), (PRO_MONTHLY, "2,000 credits")]:
        assert text[f"plan-{price_id}"].count(credits) == 1, text[f"plan-{price_id}"]
    assert text[f"plan-credits-{PRO_YEARLY}"].startswith("24,000 credits every year")


def test_a_product_sold_monthly_and_yearly_gets_the_switch(client, demo):
    html = page(client)
    found = elements(html)
    assert "period-monthly" in found and "period-yearly" in found
    assert found["period-switch"].keys() >= {"x-cloak"}  # hidden until Alpine runs
    assert found["plan-periods"]["x-data"] == "billingPeriod"
    assert found["plan-periods"]["data-period"] == "month"
    assert found[f"plan-column-{PRO_MONTHLY}"]["x-show"] == "monthly"
    assert found[f"plan-column-{PRO_YEARLY}"]["x-show"] == "yearly"
    assert "x-show" not in found[f"plan-column-{BASIC}"]  # one period only: always shown


def test_without_a_second_period_there_is_no_switch(client, demo):
    StripeProduct.objects.filter(stripe_price_id=PRO_YEARLY).update(active=False)
    found = elements(page(client))
    assert "period-switch" not in found
    assert "x-show" not in found[f"plan-column-{PRO_MONTHLY}"]


def test_a_yearly_subscriber_sees_the_yearly_prices_first(client, user, demo):
    subscribe(user, PRO_YEARLY)
    client.force_login(user)
    found = elements(page(client))
    assert found["plan-periods"]["data-period"] == "year"


def test_the_current_plan_is_a_badge_not_a_button(client, user, demo):
    subscribe(user, BASIC)
    client.force_login(user)
    html = page(client)
    found, text = elements(html), texts(html)
    assert "tag" in str(found[f"current-{BASIC}"]["class"]).split()
    assert text[f"current-{BASIC}"] == "Current plan"
    assert f"current-{PRO_MONTHLY}" not in found
    card = text[f"plan-{BASIC}"]
    assert "Manage billing" in card and "Subscribe" not in card and "grade" not in card
    assert "Upgrade" in text[f"plan-{PRO_MONTHLY}"]


# --------------------------------------------------------------------------- the packs


def test_signed_out_the_pack_quantity_is_labelled_and_leads_to_sign_up(client, demo):
    html = page(client)
    found, text = elements(html), texts(html)
    box = found[f"quantity-{PACK}"]
    assert (box["min"], box["max"], box["value"]) == ("1", "10", "1")
    assert f'<label class="label is-small" for="quantity-{PACK}">Quantity</label>' in html
    assert text[f"quantity-help-{PACK}"] == "1 to 10 packs: 100 to 1,000 credits."
    assert "Sign up to buy" in text[f"pack-{PACK}"]

    response = client.get(f"/pricing/?buy={PACK}&quantity=3")
    assert response.status_code == 302
    target = urlparse(response["Location"])
    assert target.path == "/accounts/signup/"
    back = parse_qs(target.query)["next"][0]
    assert back == f"/pricing/?buy={PACK}&quantity=3#pack-{PACK}"


def test_signed_in_the_chosen_quantity_is_filled_in(client, user, demo):
    client.force_login(user)
    found = elements(page(client, f"/pricing/?buy={PACK}&quantity=3"))
    assert found[f"quantity-{PACK}"]["value"] == "3"
    assert "Buy" in texts(page(client))[f"pack-{PACK}"]


@pytest.mark.parametrize("quantity", ["0", "11", "abc", "-2", "2.5"])
def test_a_quantity_out_of_range_is_not_filled_in(client, user, demo, quantity):
    client.force_login(user)
    found = elements(page(client, f"/pricing/?buy={PACK}&quantity={quantity}"))
    assert found[f"quantity-{PACK}"]["value"] == "1"


def test_a_bad_quantity_signed_out_just_shows_the_page(client, demo):
    assert client.get(f"/pricing/?buy={PACK}&quantity=abc").status_code == 200


def test_the_copy_follows_the_packs_and_the_purchase_limits(client, demo, settings):
    settings.MIN_CREDIT_PURCHASE = 250
    settings.MAX_CREDIT_PURCHASE = 2000
    text = texts(page(client))
    assert text["purchase-range"] == (
        "Pay-as-you-go credits never expire. One purchase buys 300 to 2,000 credits."
    )
    assert text[f"quantity-help-{PACK}"] == "3 to 20 packs: 300 to 2,000 credits."
