"""The endpoint: signature on the raw body, dedupe; a failed attempt is a WebhookFailure and a
retry (``webhook_queue``)."""

import json
import secrets
import time
from typing import Any
from unittest import mock

import pytest
from django_tasks_db.models import DBTaskResult

from credits.models import CreditLot
from stripe_manager import signing
from stripe_manager.models import (
    Payment,
    ProcessedStripeEvent,
    ReceivedStripeEvent,
    WebhookFailure,
)
from stripe_manager.tests.factories import (
    SECRET,
    balance,
    deliver,
    event_state,
    purchase_completed,
    webhook_retries_due,
)

pytestmark = pytest.mark.django_db


def nothing_stored() -> bool:
    return (
        ProcessedStripeEvent.objects.count() == 0
        and Payment.objects.count() == 0
        and CreditLot.objects.count() == 0
        and WebhookFailure.objects.count() == 0
        and ReceivedStripeEvent.objects.count() == 0
        and DBTaskResult.objects.count() == 0
    )


def test_a_valid_signed_event_is_processed(client, customer, catalog):
    assert deliver(client, purchase_completed(customer, catalog["pack"])) == 200
    assert balance(customer.user)[2] == 100


@pytest.mark.parametrize(
    "header",
    ["", "t=123", "v1=abc", "t=abc,v1=def", "garbage"],
    ids=["missing", "no-signature", "no-timestamp", "bad-timestamp", "garbage"],
)
def test_missing_or_malformed_signature_is_400_and_stores_nothing(
    client, customer, catalog, header
):
    body = json.dumps(purchase_completed(customer, catalog["pack"])).encode()
    extra = {"HTTP_STRIPE_SIGNATURE": header} if header else {}
    response = client.post("/stripe/webhook/", data=body, content_type="application/json", **extra)
    assert response.status_code == 400
    assert nothing_stored()


def test_signature_with_the_wrong_secret_is_400_and_stores_nothing(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert deliver(client, event, secret="whsec_someone_else") == 400
    assert nothing_stored()


def test_stale_signature_is_400_and_stores_nothing(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert deliver(client, event, timestamp=int(time.time()) - 3600) == 400
    assert nothing_stored()


@pytest.mark.parametrize("ahead", [signing.DEFAULT_TOLERANCE + 5, 3600, 10 * 365 * 24 * 3600])
def test_a_signature_dated_beyond_the_tolerance_in_the_future_is_400_and_stores_nothing(
    client, customer, catalog, ahead
):
    event = purchase_completed(customer, catalog["pack"])
    assert deliver(client, event, timestamp=int(time.time()) + ahead) == 400
    assert nothing_stored()


def test_a_signature_a_little_ahead_of_this_clock_is_accepted(client, customer, catalog):
    # Stripe's clock and this server's may differ by a few seconds.
    event = purchase_completed(customer, catalog["pack"])
    assert deliver(client, event, timestamp=int(time.time()) + 60) == 200
    assert balance(customer.user)[2] == 100


def test_with_no_secret_configured_even_an_event_signed_with_none_is_400(
    client, customer, catalog, settings
):
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert deliver(client, purchase_completed(customer, catalog["pack"]), secret="") == 400
    assert nothing_stored()


def test_an_event_signed_with_the_public_placeholder_is_400_for_a_random_secret(
    client, customer, catalog, settings
):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(32)
    event = purchase_completed(customer, catalog["pack"], quantity=20000)
    assert deliver(client, event, secret="whsec_dummy") == 400
    assert nothing_stored()
    assert balance(customer.user)[2] == 0
    # The same event signed with the project's own secret is what gets through.
    assert deliver(client, event, secret=settings.STRIPE_WEBHOOK_SECRET) == 200


def test_a_body_changed_after_signing_is_400(client, customer, catalog):
    body = json.dumps(purchase_completed(customer, catalog["pack"])).encode()
    header = signing.sign(body, SECRET)
    tampered = body.replace(b'"credits": "100"', b'"credits": "9999"')
    response = client.post(
        "/stripe/webhook/",
        data=tampered,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )
    assert response.status_code == 400
    assert nothing_stored()


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"id": "evt_1"}', b""])
def test_a_signed_body_that_is_not_an_event_is_400(client, body):
    assert signed_post(client, body).status_code == 400
    assert nothing_stored()


def signed_post(client, body: bytes):
    return client.post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signing.sign(body, SECRET),
    )


def inside_the_object(event: dict[str, Any], member: bytes) -> bytes:
    """The event as Stripe would serialise it, with ``member`` added to ``data.object``."""
    body = json.dumps(event).encode()
    changed = body.replace(b'"object": {', b'"object": {' + member + b", ", 1)
    assert changed != body
    return changed


def test_a_signed_event_nested_100k_levels_deep_is_400_and_stores_nothing(
    client, customer, catalog
):
    deep = b"[" * 100_000 + b"]" * 100_000
    body = inside_the_object(purchase_completed(customer, catalog["pack"]), b'"extra": ' + deep)
    assert signed_post(client, body).status_code == 400
    assert nothing_stored()
    assert balance(customer.user)[2] == 0


@pytest.mark.parametrize("number", [b"1e400", b"NaN", b"-Infinity", b"9" * 41])
def test_a_signed_event_holding_an_unusable_number_is_400_and_stores_nothing(
    client, customer, catalog, number
):
    body = inside_the_object(purchase_completed(customer, catalog["pack"]), b'"extra": ' + number)
    assert signed_post(client, body).status_code == 400
    assert nothing_stored()


def test_get_is_not_allowed(client):
    assert client.get("/stripe/webhook/").status_code == 405


def test_unknown_event_types_answer_200_and_are_recorded_once(client):
    event = {
        "id": "evt_unknown",
        "type": "radar.early_fraud_warning.created",
        "data": {"object": {}},
    }
    assert deliver(client, event) == 200
    assert deliver(client, event) == 200
    assert ProcessedStripeEvent.objects.filter(event_id="evt_unknown").count() == 1


def test_the_same_event_delivered_twice_has_one_effect(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert deliver(client, event) == 200
    assert deliver(client, event) == 200
    assert balance(customer.user)[2] == 100
    assert Payment.objects.count() == 1


def test_a_handler_exception_is_retried_with_no_effect_and_one_failure_row(
    client, customer, catalog
):
    event = purchase_completed(customer, catalog["pack"])
    with (
        mock.patch("stripe_manager.webhooks.emails.queue_receipt", side_effect=AssertionError),
        mock.patch("credits.ledger.grant", side_effect=RuntimeError("boom")),
    ):
        assert deliver(client, event) == 200  # stored; the attempt after it failed
        assert event_state(event) == ("pending", 1)
        assert webhook_retries_due() == 1  # the retry it scheduled, failing again
        assert event_state(event) == ("pending", 2)
    assert Payment.objects.count() == 0
    assert CreditLot.objects.count() == 0
    assert ProcessedStripeEvent.objects.count() == 0
    failure = WebhookFailure.objects.get()
    assert failure.event_id == event["id"]
    assert failure.attempts == 2
    assert "boom" in failure.error
    # The next retry settles it.
    assert webhook_retries_due() == 1
    assert balance(customer.user)[2] == 100
    assert event_state(event)[0] == "processed"
    failure.refresh_from_db()
    assert failure.resolved_at is not None


def test_an_event_for_a_customer_not_ours_is_200_logged_and_changes_nothing(
    client, user, catalog, caplog
):
    # Our customer row commits before any checkout can start, so an unknown customer
    # is someone else's (another app on the account): a retry would never find it.
    from stripe_manager.tests.factories import invoice_paid, make_customer, subscription_event

    theirs = make_customer(user, "cus_theirs")
    events = [
        purchase_completed(theirs, catalog["pack"]),
        subscription_event("customer.subscription.created", theirs, catalog["basic"]),
        invoice_paid(theirs, catalog["basic"], invoice_id="in_theirs"),
    ]
    theirs.delete()
    caplog.set_level("INFO", logger="stripe_manager.webhooks")

    for event in events:
        assert deliver(client, event) == 200
        assert deliver(client, event) == 200  # stored as processed: a duplicate now

    ignored = [
        r for r in caplog.records if r.getMessage() == "event for a customer not ours ignored"
    ]
    assert [r.event_id for r in ignored] == [e["id"] for e in events]
    assert Payment.objects.count() == 0
    assert CreditLot.objects.count() == 0
    assert WebhookFailure.objects.count() == 0
    assert ProcessedStripeEvent.objects.count() == 3
