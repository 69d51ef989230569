"""One Stripe customer per user, even when two checkouts race."""

import threading

import pytest
from django.db import connection

from stripe_manager.gateway import CheckoutSession
from stripe_manager.models import StripeCustomer
from stripe_manager.services import checkout_start
from stripe_manager.simulator.gateway import SimulatorGateway
from stripe_manager.tests.factories import make_catalog
from users.tests.factories import make_user


class SlowCountingGateway(SimulatorGateway):
    """The simulator, counting customer creations and slow enough for a race."""

    created: list[str] = []

    def create_customer(self, *, email, user_id, idempotency_key):
        import time

        time.sleep(0.2)
        customer_id = f"cus_race_{len(self.created)}"
        self.created.append(customer_id)
        return customer_id

    def create_checkout_session(self, **kwargs):
        return CheckoutSession(session_id="cs_race", url="/x/")


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_checkouts_by_one_user_create_one_stripe_customer(settings):
    """transaction=True: each thread has its own connection and commits, as two requests would.

    The row lock on the user makes the second request wait for the first one's
    customer instead of creating another.
    """
    settings.STRIPE_GATEWAY = "stripe_manager.tests.test_customers.SlowCountingGateway"
    SlowCountingGateway.created = []
    make_catalog()
    user = make_user()
    errors = []

    def buy():
        try:
            checkout_start(
                user=user, price_id="price_pack", quantity=1, success_url="/s", cancel_url="/c"
            )
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert StripeCustomer.objects.filter(user=user).count() == 1
    assert len(SlowCountingGateway.created) == 1
