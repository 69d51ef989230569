"""Only a real trial invoice grants nothing, and an account gets one trial's credits at most."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from credits.models import CreditLot
from stripe_manager import shapes
from stripe_manager.catalog import catalog_sync
from stripe_manager.models import Payment, SimulatedObject, StripeProduct, UserSubscription
from stripe_manager.tests.factories import balance, deliver, invoice_paid, price_obj

pytestmark = pytest.mark.django_db

BASIC = "price_sim_basic_monthly"
DAY = 24 * 3600


@pytest.fixture
def free_plan(catalog) -> StripeProduct:
    """A $0 monthly plan that comes with 100 credits (the catalog accepts it)."""
    return StripeProduct.objects.create(
        name="Free",
        price=Decimal("0.00"),
        interval="month",
        credit_amount=100,
        stripe_product_id="prod_free",
        stripe_price_id="price_free",
    )


def test_a_zero_dollar_plan_grants_its_credits_every_period(client, customer, free_plan):
    first = invoice_paid(customer, free_plan, invoice_id="in_free_1", reason="subscription_create")
    renewal = invoice_paid(
        customer, free_plan, invoice_id="in_free_2", start=int(timezone.now().timestamp())
    )
    for event in (first, renewal):
        assert event["data"]["object"]["amount_paid"] == 0
        assert deliver(client, event) == 200

    assert balance(customer.user) == (200, 0, 200)
    assert Payment.objects.filter(user=customer.user, credits=100).count() == 2


def test_a_paid_plans_zero_dollar_trial_invoice_still_grants_nothing(client, catalog, customer):
    plan = catalog["basic"]
    now = int(timezone.now().timestamp())
    line = shapes.invoice_line(
        price_obj=price_obj(plan), amount=0, period_start=now, period_end=now + 7 * DAY
    )
    invoice = shapes.invoice(
        "in_trial",
        customer=customer.stripe_customer_id,
        subscription_id="sub_trial",
        lines=[line],
        billing_reason="subscription_create",
        created=now,
    )

    assert deliver(client, shapes.event("invoice.paid", invoice, created=now)) == 200

    assert balance(customer.user) == (0, 0, 0)
    assert not Payment.objects.exists()


# --------------------------------------------------------------------------- one trial per account


def _set_trial(product_id: str, **metadata: str) -> None:
    row = SimulatedObject.objects.get(object_id=product_id, kind="product")
    row.data["metadata"].update(metadata)
    row.save()


@pytest.fixture
def trial_plan(db):
    """The demo's Basic plan with a 14-day trial of 50 credits."""
    call_command("seed_demo_catalog", stdout=None)
    _set_trial("prod_sim_basic", trial_days="14", trial_credits="50")
    catalog_sync()
    return StripeProduct.objects.get(stripe_price_id=BASIC)


def test_checkouts_opened_in_parallel_tabs_grant_one_trials_credits(
    client, user, trial_plan, django_capture_on_commit_callbacks
):
    client.force_login(user)
    # Three tabs open a checkout before any of them is paid: no webhook has said
    # the account has a plan yet, so each offers the trial.
    tabs = [
        client.post("/billing/checkout/", {"price_id": BASIC, "quantity": "1"}) for _ in range(3)
    ]
    for opened in tabs:
        assert opened.status_code == 303
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(opened["Location"], {"action": "pay"}).status_code == 303

    assert UserSubscription.objects.filter(user=user, status="trialing").count() == 3
    assert balance(user) == (50, 0, 50)
    assert CreditLot.objects.filter(user=user, source="trial").count() == 1


def _trialing(customer, plan, sub_id: str, status: str = "trialing") -> dict[str, Any]:
    now = int(timezone.now().timestamp())
    obj = shapes.subscription(
        sub_id,
        customer=customer.stripe_customer_id,
        price_obj=price_obj(plan),
        item_id=f"si_{sub_id}",
        status=status,
        period_start=now,
        period_end=now + 7 * DAY,
        created=now,
        trial_start=now,
        trial_end=now + 7 * DAY,
    )
    if status == "trialing":
        return shapes.event("customer.subscription.created", obj, created=now)
    return shapes.event("customer.subscription.deleted", obj, created=now + 1)


def test_the_trial_credits_stay_while_another_trial_of_the_account_runs(client, catalog, customer):
    plan = catalog["basic"]
    plan.trial_days, plan.trial_credit_amount = 7, Decimal("50")
    plan.save()
    for sub_id in ("sub_tab_a", "sub_tab_b"):
        assert deliver(client, _trialing(customer, plan, sub_id)) == 200
    assert balance(customer.user) == (50, 0, 50)

    # One of the two is cancelled at once: the other trial still runs, its credits stay.
    assert deliver(client, _trialing(customer, plan, "sub_tab_b", "canceled")) == 200
    assert balance(customer.user) == (50, 0, 50)

    # The last trial cancelled early takes them back.
    assert deliver(client, _trialing(customer, plan, "sub_tab_a", "canceled")) == 200
    assert balance(customer.user) == (0, 0, 0)
