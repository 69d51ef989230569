"""The management commands staff and the demo use: sync_stripe_products, simulate_renewal."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from credits import ledger
from stripe_manager.gateway import PriceInfo
from stripe_manager.models import StripeProduct, UserSubscription
from stripe_manager.tests.test_admin import AdminFakeGateway
from stripe_manager.tests.test_simulator import pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    call_command("seed_demo_catalog", stdout=StringIO())
    return {p.name: p for p in StripeProduct.objects.all()}


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def fake_gateway(settings):
    """Stripe's side of a sync: one pack and one plan (test_admin's fake gateway)."""
    settings.STRIPE_GATEWAY = "stripe_manager.tests.test_admin.AdminFakeGateway"
    prices = [("price_pack", "none", 1200, 120), ("price_team", "month", 9900, 5000)]
    AdminFakeGateway.prices = [
        PriceInfo(
            price_id=price_id,
            product_id=price_id.replace("price_", "prod_"),
            name=price_id,
            description="",
            unit_amount=amount,
            currency="usd",
            interval=interval,
            credit_amount=Decimal(credits),
        )
        for price_id, interval, amount, credits in prices
    ]
    AdminFakeGateway.error = ""
    yield
    AdminFakeGateway.error = ""


def test_sync_stripe_products_pulls_the_prices_and_deactivates_the_rest(fake_gateway, catalog):
    out = StringIO()
    call_command("sync_stripe_products", stdout=out)
    assert "2 prices synced" in out.getvalue()
    active = set(
        StripeProduct.objects.filter(active=True).values_list("stripe_price_id", flat=True)
    )
    assert active == {"price_pack", "price_team"}
    assert StripeProduct.objects.get(stripe_price_id="price_team").credit_amount == 5000


def test_sync_stripe_products_reports_a_gateway_failure_and_changes_nothing(
    fake_gateway,
    catalog,
):
    AdminFakeGateway.error = "Invalid API Key provided"
    before = list(StripeProduct.objects.values_list("stripe_price_id", "active"))
    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        call_command("sync_stripe_products", stdout=StringIO())
    assert list(StripeProduct.objects.values_list("stripe_price_id", "active")) == before


def test_simulate_renewal_grants_the_next_period_once_per_run(
    signed_in,
    user,
    demo,
    django_capture_on_commit_callbacks,
):
    basic = demo["Basic"]
    pay(signed_in, basic.stripe_price_id, django_capture_on_commit_callbacks)
    start = UserSubscription.objects.get(user=user).current_period_start
    with django_capture_on_commit_callbacks(execute=True):
        call_command("simulate_renewal", user.email.upper(), stdout=StringIO())
    renewed = UserSubscription.objects.get(user=user)
    assert start is not None
    assert renewed.current_period_start is not None
    assert renewed.current_period_start > start
    assert ledger.balance(user).total == 2 * basic.credit_amount


def test_simulate_renewal_refuses_without_a_plan_or_the_simulator(user, settings):
    with pytest.raises(CommandError, match="no active plan"):
        call_command("simulate_renewal", user.email, stdout=StringIO())
    settings.STRIPE_GATEWAY = "stripe"
    with pytest.raises(CommandError, match="simulator is not selected"):
        call_command("simulate_renewal", user.email, stdout=StringIO())
