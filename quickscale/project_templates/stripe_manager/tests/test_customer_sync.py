"""The Stripe customer follows its account: email and name pushed by a task; deletion erases it.

The task runs from the real queue (``run_queued_tasks``). Stripe is either the
offline simulator or the real ``StripeGateway`` with Stripe's servers faked at
the HTTP edge (``FakeStripe``), which is how a failure and its retry are shown.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from common.testing.tasks import queued_task_names, run_queued_tasks, run_queued_tasks_later
from stripe_manager import customer_sync
from stripe_manager.gateway import StripeGateway
from stripe_manager.models import SimulatedObject
from stripe_manager.services import customer_get_or_create
from stripe_manager.tests.factories import make_customer
from stripe_manager.tests.test_gateway import (
    _error,
    _list,
    sdk_checkout_session,
    sdk_customer,
    sdk_subscription,
)
from stripe_manager.tests.test_gateway_customers import BlankKeepingFakeStripe
from users.models import Profile
from users.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "stripe_manager.customer_sync.sync_customer"
_fakes: list[BlankKeepingFakeStripe] = []


class FakeHttpStripeGateway(StripeGateway):
    """The real gateway, its HTTP client the test's ``FakeStripe`` (Stripe's network faked)."""

    def __init__(self) -> None:
        super().__init__(api_key="sk_test_sync", http_client=_fakes[-1])


@pytest.fixture
def fake(settings) -> Any:
    _fakes.append(BlankKeepingFakeStripe())
    settings.STRIPE_GATEWAY = f"{__name__}.FakeHttpStripeGateway"
    yield _fakes[-1]
    _fakes.pop()


def signed_in(client, user) -> Any:
    """Signed in through the login form, as a person is (allauth records the authentication)."""
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def make_primary(client, email: str) -> None:
    user = EmailAddress.objects.get(primary=True).user
    EmailAddress.objects.create(user=user, email=email, verified=True)
    client.post(reverse("account_email"), {"action_primary": "", "email": email})


def simulated_customer(user) -> dict[str, Any]:
    customer = user.stripe_customer
    data: dict[str, Any] = SimulatedObject.objects.get(
        object_id=customer.stripe_customer_id, kind="customer"
    ).data
    return data


# --------------------------------------------------------------------------- through the simulator


def test_a_new_primary_email_is_queued_then_pushed_to_the_stripe_customer(client):
    """transaction=True: the task row must commit with the change, as in production."""
    user = make_user("old@example.com")
    customer_get_or_create(user)
    run_queued_tasks()
    signed_in(client, user)

    make_primary(client, "new@example.com")

    user.refresh_from_db()
    assert user.email == "new@example.com"
    assert queued_task_names() == [TASK]
    assert simulated_customer(user)["email"] == "old@example.com"  # not before the task runs
    assert run_queued_tasks() == 1
    assert simulated_customer(user)["email"] == "new@example.com"
    assert queued_task_names() == []


def test_a_name_change_on_the_profile_is_pushed_and_other_profile_edits_are_not(client):
    user = make_user()
    customer_get_or_create(user)
    signed_in(client, user)

    client.post(reverse("users:profile"), {"full_name": "Dana Scully", "bio": ""})
    run_queued_tasks()
    assert simulated_customer(user)["name"] == "Dana Scully"

    client.post(reverse("users:profile"), {"full_name": "Dana Scully", "bio": "FBI"})
    assert queued_task_names() == []  # the name did not change


def test_a_user_without_a_stripe_customer_queues_nothing(client):
    user = make_user()
    signed_in(client, user)

    make_primary(client, "other@example.com")
    client.post(reverse("users:profile"), {"full_name": "Fox Mulder", "bio": ""})

    assert queued_task_names() == []


def test_deleting_the_account_erases_the_stripe_customers_personal_data(client):
    user = make_user("dana@example.com")
    customer_get_or_create(user)
    signed_in(client, user)
    client.post(reverse("users:profile"), {"full_name": "Dana Scully", "bio": ""})
    run_queued_tasks()

    client.post(reverse("users:delete"), {"password": PASSWORD})
    assert queued_task_names() == [TASK]
    run_queued_tasks()

    data = simulated_customer(user)
    assert (data["email"], data["name"]) == (None, None)
    assert "user_id" not in data
    assert user.stripe_customer.stripe_customer_id  # the customer (and its payments) stays


# --------------------------------------------------------------------------- real gateway


def test_a_failed_push_is_retried_later_and_then_succeeds(client, fake, caplog):
    user = make_user()
    customer = make_customer(user, "cus_retry")
    for _ in range(3):  # the first try and the SDK's own two retries
        fake.answer(
            "POST", "/v1/customers/cus_retry", _error("Stripe is down", kind="api_error"), 503
        )
    fake.answer("POST", "/v1/customers/cus_retry", sdk_customer("cus_retry"))
    signed_in(client, user)

    make_primary(client, "retry@example.com")
    with caplog.at_level(logging.WARNING, logger="stripe_manager.customer_sync"):
        assert run_queued_tasks() == 1  # failed; the retry waits for its run_after

    assert queued_task_names() == [TASK]
    assert "stripe customer sync failed; retrying" in caplog.messages
    assert run_queued_tasks_later() == 1
    last = fake.sent[-1]
    assert (last.path, last.params) == (
        f"/v1/customers/{customer.stripe_customer_id}",
        {"email": "retry@example.com", "name": ""},
    )
    assert len(fake.sent) == 4
    assert queued_task_names() == []


def test_a_push_that_keeps_failing_is_given_up_after_the_last_attempt_and_logged(
    client, fake, caplog, settings
):
    user = make_user()
    make_customer(user, "cus_down")
    fake.answer("POST", "/v1/customers/cus_down", _error("No such customer", code="x"), 400)
    signed_in(client, user)
    make_primary(client, "lost@example.com")

    with caplog.at_level(logging.INFO, logger="stripe_manager.customer_sync"):
        ran = run_queued_tasks()
        while queued_task_names():
            ran += run_queued_tasks_later()

    assert ran == customer_sync.MAX_ATTEMPTS
    assert len(fake.sent) == customer_sync.MAX_ATTEMPTS  # a 400 is not retried by the SDK
    given_up = [r for r in caplog.records if r.message == "stripe customer sync given up"]
    assert [(r.levelname, r.attempts) for r in given_up] == [("ERROR", customer_sync.MAX_ATTEMPTS)]


def test_the_retry_waits_longer_after_each_failure_up_to_an_hour():
    delays = [customer_sync.retry_delay(n).total_seconds() for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_deletion_through_the_real_gateway_clears_the_customer_in_one_modify(client, fake):
    user = make_user()
    make_customer(user, "cus_gdpr")
    # An empty page of subscriptions (typed by the slice; only the gateway imports stripe).
    no_plans = _list([sdk_subscription()][:0], url="/v1/subscriptions?customer=cus_gdpr")
    no_checkouts = _list(
        [sdk_checkout_session("cs", "https://checkout.stripe.com/c/pay/cs")][:0],
        url="/v1/checkout/sessions?customer=cus_gdpr",
    )
    # Open checkouts are closed and plans cancelled first (none here).
    fake.answer("GET", "/v1/checkout/sessions", no_checkouts)
    fake.answer("GET", "/v1/subscriptions", no_plans)
    fake.answer("POST", "/v1/customers/cus_gdpr", sdk_customer("cus_gdpr"))
    signed_in(client, user)

    client.post(reverse("users:delete"), {"password": PASSWORD})
    run_queued_tasks()

    checkouts, listed, sent = fake.sent
    assert (checkouts.path, listed.path) == ("/v1/checkout/sessions", "/v1/subscriptions")
    assert (sent.method, sent.path) == ("POST", "/v1/customers/cus_gdpr")
    assert sent.params["email"] == "" and sent.params["name"] == ""
    assert sent.params["metadata"] == "" and sent.params["address"] == ""


def test_payments_off_queues_nothing(client, settings):
    user = make_user()
    make_customer(user, "cus_off")
    settings.STRIPE_GATEWAY = "off"
    signed_in(client, user)

    make_primary(client, "off@example.com")

    assert queued_task_names() == []


def test_a_new_customer_gets_the_profiles_name_by_task_and_one_without_a_name_queues_nothing():
    named, unnamed = make_user(), make_user()
    Profile.objects.create(user=named, full_name="Walter Skinner")

    customer_get_or_create(named)
    customer_get_or_create(unnamed)

    assert queued_task_names() == [TASK]
    run_queued_tasks()
    assert simulated_customer(named)["name"] == "Walter Skinner"
    assert "name" not in simulated_customer(unnamed)


def test_a_customer_stripe_no_longer_has_is_given_up_at_once(client, fake, caplog):
    user = make_user()
    make_customer(user, "cus_deleted")
    fake.answer("POST", "/v1/customers/cus_deleted", _error("No such customer: 'cus_deleted'"), 404)
    signed_in(client, user)
    make_primary(client, "gone@example.com")

    with caplog.at_level(logging.INFO, logger="stripe_manager.customer_sync"):
        assert run_queued_tasks() == 1

    assert queued_task_names() == []
    assert len(fake.sent) == 1
    assert "stripe customer sync given up" in caplog.messages
