"""A paid API call that takes the balance below the user's auto top-up threshold.

The call is never blocked or failed by the top-up: it only queues it, and
the charge happens in the worker, where Stripe being down is retried later.
Stripe is the offline simulator with its off-session charges failing (a
gateway chosen by ``STRIPE_GATEWAY``, as the billing tests swap theirs).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django_tasks_db.models import DBTaskResult

from common.testing.tasks import run_queued_tasks
from credits import ledger
from services.models import Service
from stripe_manager.gateway import GatewayError, OffSessionPayment
from stripe_manager.models import AutoTopUp, AutoTopUpCharge
from stripe_manager.simulator import cards
from stripe_manager.simulator.gateway import SimulatorGateway
from stripe_manager.tests.factories import make_catalog, make_customer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_services")]

TASK = "stripe_manager.auto_top_up_tasks.charge_auto_top_up"


class StripeDown(SimulatorGateway):
    """The simulator, with Stripe unreachable for off-session charges."""

    calls = 0

    def charge_saved_card(self, **kwargs: object) -> OffSessionPayment:
        StripeDown.calls += 1
        raise GatewayError("Stripe could not charge the saved card: connection refused")


def test_the_api_call_that_crosses_the_threshold_succeeds_and_only_queues_the_top_up(
    client, auth, user, fund, settings, django_capture_on_commit_callbacks
):
    settings.STRIPE_GATEWAY = f"{__name__}.StripeDown"
    StripeDown.calls = 0
    catalog = make_catalog()
    make_customer(user)
    fund(user, 120)
    AutoTopUp.objects.create(
        user=user,
        enabled=True,
        product=catalog["pack"],
        threshold=Decimal(50),
        payment_method_id=cards.VISA,
    )
    Service.objects.filter(name="text_sentiment_analysis").update(credit_cost=Decimal(75))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/services/text_sentiment_analysis/run",
            json.dumps({"input": {"text": "I love it"}}),
            content_type="application/json",
            **auth,
        )

    assert response.status_code == 200, response.content
    assert response.json()["data"]["result"]["label"] == "positive"
    assert ledger.balance(user).available == Decimal(45)
    assert StripeDown.calls == 0  # the call only queued the top-up
    assert AutoTopUpCharge.objects.get().status == AutoTopUpCharge.Status.QUEUED

    with django_capture_on_commit_callbacks(execute=True):
        run_queued_tasks()

    # Stripe down is not the card's answer: the same charge is tried again later.
    charge = AutoTopUpCharge.objects.get()
    assert (StripeDown.calls, charge.status, charge.tries) == (1, "queued", 1)
    assert AutoTopUp.objects.get(user=user).enabled is True
    retry = DBTaskResult.objects.get(task_path=TASK, status="READY")
    assert retry.run_after is not None and retry.run_after > charge.created_at
