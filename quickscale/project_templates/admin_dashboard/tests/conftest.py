from contextlib import nullcontext
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from stripe_manager.models import Payment
from stripe_manager.tests.factories import SECRET
from users.models import CustomUser
from users.tests.factories import make_user


@pytest.fixture(autouse=True)
def _simulator(settings):
    """Payments go through the offline Stripe simulator, as in a new project."""
    settings.STRIPE_GATEWAY = "simulator"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.MIN_CREDIT_PURCHASE = 1
    settings.MAX_CREDIT_PURCHASE = 100000


@pytest.fixture
def customer(db):
    return make_user(email="customer@example.com")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def member_client(client, db):
    client.force_login(make_user(email="member@example.com"))
    return client


@pytest.fixture
def demo_catalog(db):
    call_command("seed_demo_catalog", stdout=None)


def buy_credits(user: CustomUser, *, quantity: int = 1, capture: Any = None) -> Payment:
    """Buy the simulator's 100-credit pack as ``user`` would, webhooks included.

    ``capture`` runs the simulator's on-commit deliveries inside a test
    transaction; transactional tests commit for real and need none.
    """
    client = Client()
    client.force_login(user)
    response = client.post(
        "/billing/checkout/", {"price_id": "price_sim_credits_100", "quantity": str(quantity)}
    )
    assert response.status_code == 303, response.content
    with capture(execute=True) if capture else nullcontext():
        paid = client.post(response["Location"], {"action": "pay"})
    assert paid.status_code == 303
    return Payment.objects.filter(user=user).latest("id")


@pytest.fixture
def purchase(customer, demo_catalog, django_capture_on_commit_callbacks):
    """A paid credit purchase: 10.00 USD for 100 credits."""
    payment = buy_credits(customer, capture=django_capture_on_commit_callbacks)
    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.amount == Decimal("10.00")
    return payment
