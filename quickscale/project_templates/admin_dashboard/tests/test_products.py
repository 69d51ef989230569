"""The Stripe product sync button: pulls the catalog through the gateway, audited."""

from typing import Any

import pytest
from django.urls import reverse

from admin_dashboard.models import AuditLog
from stripe_manager.gateway import GatewayError
from stripe_manager.models import StripeProduct
from stripe_manager.simulator.gateway import SimulatorGateway

pytestmark = pytest.mark.django_db


def test_sync_pulls_the_catalog_and_shows_a_summary(staff_client, staff, demo_catalog):
    StripeProduct.objects.all().delete()

    response = staff_client.post(reverse("admin_dashboard:products"), follow=True)

    assert StripeProduct.objects.filter(active=True).count() == 4
    assert b"4 prices synced from Stripe, 0 deactivated." in response.content
    row = AuditLog.objects.get()
    assert (row.actor, row.action, row.details) == (
        staff,
        AuditLog.Action.PRODUCT_SYNC,
        {"synced": 4, "deactivated": 0},
    )


def test_an_htmx_sync_answers_with_the_refreshed_panel(staff_client, demo_catalog):
    response = staff_client.post(
        reverse("admin_dashboard:products"), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert b'id="sync-summary"' in response.content
    assert b"<html" not in response.content


def test_an_unreachable_stripe_is_reported_not_raised(staff_client, demo_catalog, monkeypatch):
    def unreachable(self: Any, **kwargs: Any) -> Any:
        raise GatewayError("connection refused")

    monkeypatch.setattr(SimulatorGateway, "list_prices", unreachable)
    before = list(StripeProduct.objects.values_list("stripe_price_id", "active"))

    response = staff_client.post(reverse("admin_dashboard:products"))

    assert response.status_code == 400
    assert b"Stripe could not be reached: connection refused" in response.content
    assert list(StripeProduct.objects.values_list("stripe_price_id", "active")) == before
    assert AuditLog.objects.get().details == {"error": "connection refused"}


def test_the_products_page_lists_the_catalog(staff_client, demo_catalog):
    page = staff_client.get(reverse("admin_dashboard:products"))

    assert page.status_code == 200
    assert b"price_sim_credits_100" in page.content
    assert b"hx-confirm" in page.content


def test_a_product_with_a_bad_trial_length_is_named_and_nothing_changes(staff_client, demo_catalog):
    from stripe_manager.models import SimulatedObject

    product = SimulatedObject.objects.get(object_id="prod_sim_basic", kind="product")
    product.data["metadata"]["trial_days"] = "-7"
    product.save()
    before = list(StripeProduct.objects.values())

    response = staff_client.post(reverse("admin_dashboard:products"))

    assert response.status_code == 400
    assert b"metadata trial_days must be a whole number of days" in response.content
    assert b"prod_sim_basic" in response.content
    assert b"could not be reached" not in response.content
    assert list(StripeProduct.objects.values()) == before
