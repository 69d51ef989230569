import pytest

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
