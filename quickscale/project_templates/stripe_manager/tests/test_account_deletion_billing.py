"""Deleting an account stops its billing, and the Stripe customer's erasure is never lost.

A deleted account's open checkouts are expired and its subscriptions cancelled
at once (no proration, no refund) before the customer's personal data is
erased; the erasure stays marked
until it is done, and the periodic sweep sends again one whose task was lost or
given up.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from common.testing.tasks import queued_task_names, run_queued_tasks, run_queued_tasks_later
from stripe_manager import customer_sync
from stripe_manager.gateway import GatewayError, get_gateway
from stripe_manager.models import Payment, SimulatedObject, StripeCustomer, UserSubscription
from stripe_manager.tests import test_customer_sync
from stripe_manager.tests.factories import make_customer
from stripe_manager.tests.test_customer_sync import signed_in, simulated_customer
from stripe_manager.tests.test_gateway import (
    _error,
    _list,
    sdk_checkout_session,
    sdk_customer,
    sdk_subscription,
)
from stripe_manager.tests.test_gateway_customers import BlankKeepingFakeStripe
from users.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db(transaction=True)

BASIC = "price_sim_basic_monthly"
TASK = "stripe_manager.customer_sync.sync_customer"


class QueryKeepingFakeStripe(BlankKeepingFakeStripe):
    """Also records a DELETE's parameters, which the SDK sends in the query string."""

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        answer = super().request(method, url, headers, post_data, _usage=_usage)  # type: ignore[no-untyped-call]
        if method == "delete":
            self.sent[-1].params = dict(parse_qsl(urlsplit(url).query))
        return answer


@pytest.fixture
def fake(settings) -> Any:
    """The real gateway, Stripe's network faked (as in test_customer_sync)."""
    test_customer_sync._fakes.append(QueryKeepingFakeStripe())
    settings.STRIPE_GATEWAY = "stripe_manager.tests.test_customer_sync.FakeHttpStripeGateway"
    yield test_customer_sync._fakes[-1]
    test_customer_sync._fakes.pop()


def no_open_checkouts(fake: Any, customer_id: str) -> None:
    """Stripe's answer to the erasure's first question: this customer has no open checkout."""
    url = f"/v1/checkout/sessions?customer={customer_id}"
    fake.answer(
        "GET",
        "/v1/checkout/sessions",
        _list([sdk_checkout_session("cs", "https://checkout.stripe.com/c/pay/cs")][:0], url=url),
    )


def subscribed(client) -> Any:
    """A signed-in user on the demo's Basic plan, paid through the simulator."""
    call_command("seed_demo_catalog", stdout=None)
    user = make_user()
    signed_in(client, user)
    opened = client.post("/billing/checkout/", {"price_id": BASIC, "quantity": "1"})
    assert opened.status_code == 303
    assert client.post(opened["Location"], {"action": "pay"}).status_code == 303
    run_queued_tasks()
    return user


def test_deleting_the_account_cancels_its_plan_at_once_then_erases_the_customer(client):
    user = subscribed(client)
    [subscription] = UserSubscription.objects.filter(user=user)
    assert subscription.status == "active"

    client.post(reverse("users:delete"), {"password": PASSWORD})
    assert StripeCustomer.objects.get(user=user).erasure_due_at is not None
    run_queued_tasks()

    subscription.refresh_from_db()
    assert subscription.status == "canceled"  # Stripe's customer.subscription.deleted came
    stored = SimulatedObject.objects.get(object_id=subscription.stripe_subscription_id).data
    assert stored["status"] == "canceled"
    assert (simulated_customer(user)["email"], simulated_customer(user)["name"]) == (None, None)
    assert StripeCustomer.objects.get(user=user).erasure_due_at is None
    # The period's end bills nothing more: the plan is over.
    with pytest.raises(GatewayError):
        get_gateway().renew(subscription.stripe_subscription_id)  # type: ignore[attr-defined]
    assert Payment.objects.filter(user=user).count() == 1
    assert not Payment.objects.filter(user=user, amount_refunded__gt=0).exists()  # no refund


def test_through_stripe_the_subscriptions_are_cancelled_without_proration_before_the_erasure(
    client, fake
):
    user = make_user()
    make_customer(user, "cus_plan")
    no_open_checkouts(fake, "cus_plan")
    fake.answer(
        "GET",
        "/v1/subscriptions",
        _list([sdk_subscription()], url="/v1/subscriptions?customer=cus_plan"),
    )
    fake.answer("DELETE", "/v1/subscriptions/sub_1", sdk_subscription())
    fake.answer("POST", "/v1/customers/cus_plan", sdk_customer("cus_plan"))
    signed_in(client, user)

    client.post(reverse("users:delete"), {"password": PASSWORD})
    run_queued_tasks()

    checkouts, listed, cancelled, erased = fake.sent
    assert (checkouts.path, checkouts.params["customer"], checkouts.params["status"]) == (
        "/v1/checkout/sessions",
        "cus_plan",
        "open",
    )
    assert (listed.method, listed.path, listed.params["customer"]) == (
        "GET",
        "/v1/subscriptions",
        "cus_plan",
    )
    assert (cancelled.method, cancelled.path) == ("DELETE", "/v1/subscriptions/sub_1")
    assert (cancelled.params["prorate"], cancelled.params["invoice_now"]) == ("false", "false")
    assert (erased.method, erased.path, erased.params["email"]) == (
        "POST",
        "/v1/customers/cus_plan",
        "",
    )
    assert StripeCustomer.objects.get(user=user).erasure_due_at is None


def test_a_refused_cancel_erases_nothing_yet_and_is_retried(client, fake, caplog):
    user = make_user()
    make_customer(user, "cus_refused")
    no_open_checkouts(fake, "cus_refused")
    fake.answer(
        "GET",
        "/v1/subscriptions",
        _list([sdk_subscription()], url="/v1/subscriptions?customer=cus_refused"),
    )
    fake.answer("DELETE", "/v1/subscriptions/sub_1", _error("Try again"), 400)
    signed_in(client, user)

    client.post(reverse("users:delete"), {"password": PASSWORD})
    with caplog.at_level(logging.WARNING, logger="stripe_manager.customer_sync"):
        run_queued_tasks()

    assert [sent.path for sent in fake.sent] == [
        "/v1/checkout/sessions",
        "/v1/subscriptions",
        "/v1/subscriptions/sub_1",
    ]
    assert "stripe customer sync failed; retrying" in caplog.messages
    assert queued_task_names() == [TASK]
    assert StripeCustomer.objects.get(user=user).erasure_due_at is not None


def test_a_checkout_opened_before_the_deletion_cannot_be_paid_after_it(client):
    """The user opens a plan's checkout in one tab and deletes the account in another: the
    checkout is closed with the account, so paying it later starts no plan."""
    call_command("seed_demo_catalog", stdout=None)
    user = make_user()
    signed_in(client, user)
    opened = client.post("/billing/checkout/", {"price_id": BASIC, "quantity": "1"})
    session_id = opened["Location"].rstrip("/").rsplit("/", 1)[-1]

    client.post(reverse("users:delete"), {"password": PASSWORD})
    run_queued_tasks()

    simulator = get_gateway()
    assert simulator.checkout_session(session_id)["status"] == "expired"  # type: ignore[attr-defined]
    simulator.complete_checkout(session_id)  # type: ignore[attr-defined]  # the other tab pays
    run_queued_tasks()
    assert not SimulatedObject.objects.filter(kind="subscription").exists()
    assert not UserSubscription.objects.filter(user=user).exists()
    assert not Payment.objects.filter(user=user).exists()
    assert StripeCustomer.objects.get(user=user).erasure_due_at is None


def test_through_stripe_open_checkouts_are_expired_before_the_subscriptions_are_listed(
    client, fake
):
    """One session still open is expired; one paid between the list and the expiry (Stripe
    refuses to expire it) is passed over, and the plan it started is cancelled after."""
    user = make_user()
    make_customer(user, "cus_tabs")
    url = "/v1/checkout/sessions?customer=cus_tabs"
    open_one, paid_meanwhile = (
        sdk_checkout_session("cs_open", "https://checkout.stripe.com/c/pay/cs_open"),
        sdk_checkout_session("cs_paid", "https://checkout.stripe.com/c/pay/cs_paid"),
    )
    fake.answer("GET", "/v1/checkout/sessions", _list([open_one, paid_meanwhile], url=url))
    fake.answer("POST", "/v1/checkout/sessions/cs_open/expire", open_one)
    fake.answer(
        "POST",
        "/v1/checkout/sessions/cs_paid/expire",
        _error("Only Checkout Sessions with a status of open can be expired."),
        400,
    )
    fake.answer(
        "GET",
        "/v1/subscriptions",
        _list([sdk_subscription()], url="/v1/subscriptions?customer=cus_tabs"),
    )
    fake.answer("DELETE", "/v1/subscriptions/sub_1", sdk_subscription())
    fake.answer("POST", "/v1/customers/cus_tabs", sdk_customer("cus_tabs"))
    signed_in(client, user)

    client.post(reverse("users:delete"), {"password": PASSWORD})
    run_queued_tasks()

    assert [(sent.method, sent.path) for sent in fake.sent] == [
        ("GET", "/v1/checkout/sessions"),
        ("POST", "/v1/checkout/sessions/cs_open/expire"),
        ("POST", "/v1/checkout/sessions/cs_paid/expire"),
        ("GET", "/v1/subscriptions"),
        ("DELETE", "/v1/subscriptions/sub_1"),
        ("POST", "/v1/customers/cus_tabs"),
    ]
    assert StripeCustomer.objects.get(user=user).erasure_due_at is None


def test_a_failed_checkout_listing_erases_nothing_yet_and_is_retried(client, fake):
    user = make_user()
    make_customer(user, "cus_flaky")
    fake.answer("GET", "/v1/checkout/sessions", _error("Stripe is down", code="x"), 400)
    signed_in(client, user)

    client.post(reverse("users:delete"), {"password": PASSWORD})
    run_queued_tasks()

    assert [sent.path for sent in fake.sent] == ["/v1/checkout/sessions"]
    assert queued_task_names() == [TASK]  # retried later
    assert StripeCustomer.objects.get(user=user).erasure_due_at is not None


# --------------------------------------------------------------------------- the sweep


def _age_erasures(minutes: int) -> None:
    StripeCustomer.objects.exclude(erasure_due_at=None).update(
        erasure_due_at=timezone.now() - timedelta(minutes=minutes)
    )


def test_an_erasure_whose_task_was_lost_is_sent_again_by_the_sweep(client):
    user = subscribed(client)
    client.post(reverse("users:delete"), {"password": PASSWORD})
    # The send after commit failed (Redis down): the task never reached the queue.
    DBTaskResult.objects.filter(status="READY").delete()

    assert customer_sync.sweep_customer_erasures.call() == 0  # too early: its task may run
    _age_erasures(16)
    assert customer_sync.sweep_customer_erasures.call() == 1
    assert customer_sync.sweep_customer_erasures.call() == 0  # left to the task just sent
    run_queued_tasks()

    assert simulated_customer(user)["email"] is None
    assert UserSubscription.objects.get(user=user).status == "canceled"
    assert StripeCustomer.objects.get(user=user).erasure_due_at is None
    _age_erasures(60)
    assert customer_sync.sweep_customer_erasures.call() == 0  # done: nothing pending


def test_an_erasure_given_up_after_its_last_attempt_is_sent_again_by_the_sweep(client, fake):
    user = make_user()
    make_customer(user, "cus_later")
    # An empty page of subscriptions (typed by the slice; only the gateway imports stripe).
    empty = _list([sdk_subscription()][:0], url="/v1/subscriptions?customer=cus_later")
    no_open_checkouts(fake, "cus_later")
    fake.answer("GET", "/v1/subscriptions", _error("Stripe is down", code="x"), 400)
    signed_in(client, user)
    client.post(reverse("users:delete"), {"password": PASSWORD})
    ran = run_queued_tasks()
    while queued_task_names():
        ran += run_queued_tasks_later()
    assert ran == customer_sync.MAX_ATTEMPTS  # given up
    assert StripeCustomer.objects.get(user=user).erasure_due_at is not None

    fake.answers.clear()
    no_open_checkouts(fake, "cus_later")
    fake.answer("GET", "/v1/subscriptions", empty)
    fake.answer("POST", "/v1/customers/cus_later", sdk_customer("cus_later"))
    _age_erasures(16)
    assert customer_sync.sweep_customer_erasures.call() == 1
    run_queued_tasks()

    assert fake.sent[-1].path == "/v1/customers/cus_later"
    assert StripeCustomer.objects.get(user=user).erasure_due_at is None


def test_the_sweep_runs_periodically():
    path = "stripe_manager.customer_sync.sweep_customer_erasures"
    assert django_settings.PERIODIC_TASKS[path] <= 15 * 60
    assert import_string(path) is customer_sync.sweep_customer_erasures
