"""Events stored by the endpoint and applied by the worker: once, retried with backoff while
what they need has not come, given up after the last attempt, taken again when a worker died."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from common.task_worker import SourceRunner
from common.testing.tasks import queued_task_names
from stripe_manager import webhook_queue
from stripe_manager.exceptions import MissingPrerequisite
from stripe_manager.models import Payment, ProcessedStripeEvent, ReceivedStripeEvent, WebhookFailure
from stripe_manager.selectors import open_webhook_failure_count
from stripe_manager.tests.factories import (
    apply_received_events,
    balance,
    deliver,
    event_state,
    post_signed,
    purchase_completed,
    refund_event,
    webhook_retries_due,
)
from stripe_manager.webhooks import process_event

pytestmark = pytest.mark.django_db


def due_in(event) -> timedelta:
    row = ReceivedStripeEvent.objects.get(event_id=event["id"])
    return row.next_attempt_at - timezone.now()


@pytest.mark.django_db(transaction=True)  # the runner closes old connections
def test_the_endpoint_answers_once_the_event_is_stored_and_the_worker_applies_it(
    client, customer, catalog
):
    event = purchase_completed(customer, catalog["pack"])

    assert post_signed(client, event) == 200
    row = ReceivedStripeEvent.objects.get()
    assert (row.event_id, row.state, json.loads(row.payload)) == (event["id"], "pending", event)
    assert not Payment.objects.exists()  # nothing applied by the request itself

    # The worker's thread for stored events (common.task_worker.SourceRunner) takes it.
    runner = SourceRunner(listen=False)
    assert runner.run_source() is True
    assert runner.run_source() is False
    assert balance(customer.user)[2] == 100
    row.refresh_from_db()
    assert (row.state, row.attempts, row.payload) == ("processed", 1, "")  # details not kept
    assert row.processed_at is not None
    assert queued_task_names() == ["common.mail_tasks.send_queued_email"]  # the receipt


def test_a_duplicate_delivery_stores_nothing_whatever_its_state(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    assert post_signed(client, event) == 200  # pending
    assert apply_received_events() == 1
    assert post_signed(client, event) == 200  # processed
    assert apply_received_events() == 0
    assert ReceivedStripeEvent.objects.count() == 1
    assert balance(customer.user)[2] == 100


def test_an_event_applied_twice_has_one_effect(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    assert webhook_queue.apply_received_event(event["id"]) == "applied"
    assert webhook_queue.apply_received_event(event["id"]) == "absent"
    # A worker whose lease lapsed while it was applying it: the claim stops the second.
    ReceivedStripeEvent.objects.update(
        state="pending", payload=json.dumps(event), next_attempt_at=timezone.now()
    )
    assert webhook_queue.apply_received_event(event["id"]) == "duplicate"
    assert balance(customer.user)[2] == 100
    assert Payment.objects.count() == 1
    assert event_state(event)[0] == "processed"


def test_an_event_that_waits_for_another_is_retried_with_growing_delays_then_given_up(
    client, customer, catalog, caplog
):
    caplog.set_level(logging.INFO, logger="stripe_manager.webhook_queue")
    refund = refund_event(customer, "pi_never_paid", "re_x", 1000)

    assert deliver(client, refund) == 200
    for attempt, delay in enumerate(webhook_queue.RETRY_DELAYS, start=1):
        assert event_state(refund) == ("pending", attempt)
        assert delay - timedelta(seconds=5) < due_in(refund) <= delay
        assert apply_received_events() == 0  # not due yet
        assert webhook_retries_due() == 1

    assert event_state(refund) == ("failed", webhook_queue.MAX_ATTEMPTS)
    assert webhook_retries_due() == 0  # given up: never tried again by itself
    failure = WebhookFailure.objects.get()
    assert (failure.attempts, failure.resolved_at) == (webhook_queue.MAX_ATTEMPTS, None)
    assert "MissingPrerequisite" in failure.error
    assert open_webhook_failure_count() == 1  # the staff dashboard's and /metrics' figure
    given_up = [r for r in caplog.records if r.getMessage() == "stripe event given up"]
    assert [(r.levelname, r.event_id) for r in given_up] == [("ERROR", refund["id"])]
    assert not ProcessedStripeEvent.objects.exists()


def test_stripes_resend_of_a_given_up_event_applies_it_once_what_it_needs_is_in(
    client, customer, catalog
):
    refund = refund_event(customer, "pi_cs_late", "re_late", 1000)
    assert deliver(client, refund) == 200
    while webhook_retries_due():
        pass
    assert event_state(refund)[0] == "failed"
    payment = purchase_completed(customer, catalog["pack"], session_id="cs_late")
    assert deliver(client, payment) == 200
    assert balance(customer.user)[2] == 100

    assert deliver(client, refund) == 200  # "Resend" in Stripe's dashboard

    assert event_state(refund) == ("processed", 1)
    assert balance(customer.user)[2] == 0
    assert WebhookFailure.objects.get().resolved_at is not None
    assert open_webhook_failure_count() == 0


def test_an_event_whose_worker_died_is_taken_again_once_its_lease_lapses(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    # A worker claimed it and died before applying it.
    leased = timezone.now() + webhook_queue.LEASE
    ReceivedStripeEvent.objects.update(next_attempt_at=leased, attempts=1)
    assert apply_received_events() == 0  # left to that worker while its lease runs

    ReceivedStripeEvent.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert apply_received_events() == 1
    assert event_state(event) == ("processed", 2)
    assert balance(customer.user)[2] == 100


def test_the_periodic_run_applies_every_due_event(client, customer, catalog):
    events = [purchase_completed(customer, catalog["pack"]) for _ in range(3)]
    for event in events:
        assert post_signed(client, event) == 200

    assert webhook_queue.apply_due_stripe_events.call() == 3
    assert webhook_queue.apply_due_stripe_events.call() == 0
    assert balance(customer.user)[2] == 300


def test_on_another_task_backend_each_stored_event_sends_a_job_to_apply_it(
    client, customer, catalog, settings, django_capture_on_commit_callbacks
):
    """RQ's workers do not read the table: the request sends them a job once it committed."""
    from django_tasks.backends.dummy import DummyBackend

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    backend = webhook_queue.apply_due_stripe_events.get_backend()
    assert isinstance(backend, DummyBackend)
    event = purchase_completed(customer, catalog["pack"])

    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed(client, event) == 200
        assert post_signed(client, event) == 200  # a duplicate: no job

    assert [result.task.module_path for result in backend.results] == [
        webhook_queue.apply_due_stripe_events.module_path
    ]
    assert webhook_queue.apply_due_stripe_events.call() == 1  # what that job runs
    assert balance(customer.user)[2] == 100


def test_stripes_resend_of_an_event_waiting_for_its_retry_makes_it_due_at_once(
    client, customer, catalog
):
    refund = refund_event(customer, "pi_cs_soon", "re_soon", 1000)
    assert deliver(client, refund) == 200
    assert event_state(refund) == ("pending", 1)
    assert due_in(refund) > timedelta(seconds=5)  # waits for its retry
    assert deliver(client, purchase_completed(customer, catalog["pack"], session_id="cs_soon"))

    assert post_signed(client, refund) == 200  # "Resend" in Stripe's dashboard

    assert due_in(refund) <= timedelta(0)
    assert apply_received_events() == 1
    assert event_state(refund) == ("processed", 2)
    assert balance(customer.user)[2] == 0
    assert open_webhook_failure_count() == 0


def test_an_event_whose_workers_keep_dying_is_given_up_and_counted(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    # Every attempt so far was claimed by a worker that died before an outcome.
    past = timezone.now() - timedelta(seconds=1)
    ReceivedStripeEvent.objects.update(attempts=webhook_queue.MAX_ATTEMPTS, next_attempt_at=past)

    assert webhook_queue.apply_received_event(event["id"]) == "failed"

    assert event_state(event) == ("failed", webhook_queue.MAX_ATTEMPTS + 1)
    assert balance(customer.user)[2] == 0  # not applied on the lost attempt's behalf
    failure = WebhookFailure.objects.get()
    assert "worker lost this event" in failure.error and failure.resolved_at is None
    assert open_webhook_failure_count() == 1


def test_a_failure_after_the_lease_lapsed_leaves_an_event_another_worker_applied(
    client, customer, catalog
):
    refund = refund_event(customer, "pi_cs_race", "re_race", 1000)
    assert post_signed(client, refund) == 200
    slow = webhook_queue._claim_due(refund["id"])  # a worker takes it, then stalls
    assert slow is not None
    assert deliver(client, purchase_completed(customer, catalog["pack"], session_id="cs_race"))
    # Its lease lapses; another worker takes the event and applies it.
    ReceivedStripeEvent.objects.filter(event_id=refund["id"]).update(next_attempt_at=timezone.now())
    assert webhook_queue.apply_received_event(refund["id"]) == "applied"

    # The stalled worker's attempt ends in a failure (it read before the payment came in).
    error = MissingPrerequisite("no payment")
    assert webhook_queue._attempt_failed(refund["id"], refund["type"], slow[3], error) == "stale"

    assert event_state(refund)[0] == "processed"
    assert not WebhookFailure.objects.exists()
    assert open_webhook_failure_count() == 0


def test_a_last_attempt_failing_late_does_not_give_up_an_event_another_worker_applied(
    client, customer, catalog
):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    past = timezone.now() - timedelta(seconds=1)
    last = webhook_queue.MAX_ATTEMPTS - 1
    ReceivedStripeEvent.objects.update(attempts=last, next_attempt_at=past)
    slow = webhook_queue._claim_due(event["id"])  # the last attempt, which stalls
    assert slow is not None and slow[3] == webhook_queue.MAX_ATTEMPTS
    ReceivedStripeEvent.objects.update(attempts=last, next_attempt_at=past)  # its lease lapsed
    assert webhook_queue.apply_received_event(event["id"]) == "applied"

    error = RuntimeError("connection reset")
    assert webhook_queue._attempt_failed(event["id"], event["type"], slow[3], error) == "stale"

    assert event_state(event)[0] == "processed"
    assert not WebhookFailure.objects.exists()
    assert balance(customer.user)[2] == 100


def test_an_event_given_up_then_applied_by_a_late_worker_ends_processed(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    ReceivedStripeEvent.objects.update(state="failed", attempts=webhook_queue.MAX_ATTEMPTS)

    # The worker that had it all along finishes: its claim wins, the row follows.
    assert process_event(event) is True

    assert event_state(event)[0] == "processed"
    assert balance(customer.user)[2] == 100


def test_processed_events_older_than_the_retention_are_pruned_and_stay_deduped(
    client, customer, catalog, settings
):
    settings.STRIPE_EVENT_RETENTION_DAYS = 30
    old, recent = (purchase_completed(customer, catalog["pack"]) for _ in range(2))
    assert deliver(client, old) == 200 and deliver(client, recent) == 200
    refund = refund_event(customer, "pi_never", "re_kept", 100)
    assert deliver(client, refund) == 200  # pending: waits for its retry
    long_ago = timezone.now() - timedelta(days=31)
    ReceivedStripeEvent.objects.filter(event_id=old["id"]).update(processed_at=long_ago)
    ReceivedStripeEvent.objects.filter(event_id=refund["id"]).update(received_at=long_ago)

    assert webhook_queue.prune_stripe_events.call() == 1

    kept = set(ReceivedStripeEvent.objects.values_list("event_id", flat=True))
    assert kept == {recent["id"], refund["id"]}
    assert post_signed(client, old) == 200  # a late redelivery of the pruned one
    assert apply_received_events() == 1  # stored again, and found a duplicate
    assert balance(customer.user)[2] == 200


def test_the_prune_runs_periodically():
    from django.conf import settings

    assert "stripe_manager.webhook_queue.prune_stripe_events" in settings.PERIODIC_TASKS


def test_a_deleted_accounts_given_up_events_lose_their_details(client, customer, catalog):
    from stripe_manager.customer_sync import customer_erasure_queue
    from stripe_manager.tests.factories import make_customer
    from users.tests.factories import make_user

    mine = refund_event(customer, "pi_gone", "re_gone", 100)
    waiting = refund_event(customer, "pi_wait", "re_wait", 100)
    other = make_customer(make_user(), "cus_other_1")
    theirs = refund_event(other, "pi_theirs", "re_theirs", 100)
    for event in (mine, waiting, theirs):
        assert post_signed(client, event) == 200
    ReceivedStripeEvent.objects.exclude(event_id=waiting["id"]).update(state="failed")

    assert customer_erasure_queue(customer.user.pk) is True

    payloads = dict(ReceivedStripeEvent.objects.values_list("event_id", "payload"))
    assert payloads[mine["id"]] == ""
    assert json.loads(payloads[waiting["id"]]) == waiting  # still to apply: financial history
    assert json.loads(payloads[theirs["id"]]) == theirs
    assert webhook_queue.apply_now(list(ReceivedStripeEvent.objects.values_list("pk", flat=True)))
    assert event_state(mine)[0] == "failed"  # nothing left to apply it from
