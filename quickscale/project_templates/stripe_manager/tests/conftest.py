from decimal import Decimal

import pytest

from stripe_manager.models import AutoTopUp
from stripe_manager.simulator import cards
from stripe_manager.tests.factories import SECRET, make_catalog, make_customer


@pytest.fixture(autouse=True)
def _stripe_settings(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_GATEWAY = "simulator"
    settings.MIN_CREDIT_PURCHASE = 10
    settings.MAX_CREDIT_PURCHASE = 1000


@pytest.fixture
def catalog(db):
    return make_catalog()


@pytest.fixture
def customer(user):
    return make_customer(user)


@pytest.fixture
def other_customer(other_user):
    return make_customer(other_user)


@pytest.fixture
def opted_in(user, catalog, customer, fund):
    """Auto top-up on: 120 credits; below 50, buy the 100-credit pack with a card that pays."""
    fund(user, 120)
    return AutoTopUp.objects.create(
        user=user,
        enabled=True,
        product=catalog["pack"],
        threshold=Decimal(50),
        payment_method_id=cards.VISA,
    )
