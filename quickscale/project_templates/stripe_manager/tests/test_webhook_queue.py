"""Events stored by the endpoint and applied by the worker: once, retried with backoff while
what they need has not come, given up after the last attempt, taken at once when a worker died
and cut off when one hangs."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from common.models import QueuedEmail
from common.task_worker import SourceRunner
from common.testing.tasks import queued_task_names
from stripe_manager import webhook_queue, webhooks
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
from stripe_manager.webhooks import DueEvent, process_event

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
    runner = SourceRunner(sources=[webhook_queue.apply_next_due_event], listen=False)
    assert runner.run_source() is True
    assert runner.run_source() is False
    assert balance(customer.user)[2] == 100
    row.refresh_from_db()
    assert (row.state, row.attempts, row.payload) == ("processed", 1, "")  # details not kept
    assert row.processed_at is not None
    # The receipt waits in the outbox for the worker's email thread: no task row.
    assert QueuedEmail.objects.filter(key__startswith="receipt:", state="pending").count() == 1
    assert queued_task_names() == []


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
    # However its row came to be pending again, the claim stops a second effect.
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


class WorkerDied(Exception):
    pass


def _hold_in_another_worker(event_id: str, hold_limit: timedelta = webhook_queue.LEASE):
    """A second worker's connection takes ``event_id`` (as ``apply_due`` does) and keeps it until
    told what to do: "die" rolls its transaction back as the server does for a dead worker,
    "hang" sits idle in it. The thread's error, if any, is in ``outcome``."""
    taken, go = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}
    command: dict[str, str] = {}

    def worker() -> None:
        try:
            with transaction.atomic():
                outcome["taken"] = webhooks._claim_due(event_id, hold_limit)
                taken.set()
                go.wait(30)
                if command.get("do") == "die":
                    raise WorkerDied
                time.sleep(float(command.get("hang", "0")))
        except WorkerDied:
            pass
        except Exception as error:
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    assert taken.wait(10) and outcome["taken"] is not None

    def tell(**do: str) -> threading.Thread:
        command.update(do)
        go.set()
        return thread

    return tell, outcome


@pytest.mark.django_db(transaction=True)  # two connections see each other's commits
def test_an_event_a_worker_holds_is_passed_by_and_taken_at_once_when_that_worker_dies(
    client, customer, catalog
):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    tell, _ = _hold_in_another_worker(event["id"])

    assert webhook_queue.apply_received_event(event["id"]) == "absent"  # held: passed by
    assert apply_received_events() == 0

    tell(do="die").join(10)
    assert apply_received_events() == 1  # due at once: no lease to wait out
    assert event_state(event) == ("processed", 1)  # the dead attempt is not counted
    assert balance(customer.user)[2] == 100


@pytest.mark.django_db(transaction=True)
def test_a_repeat_delivery_of_an_event_a_worker_is_applying_does_not_wait_for_it(
    client, customer, catalog
):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    tell, _ = _hold_in_another_worker(event["id"])

    started = time.monotonic()
    assert post_signed(client, event) == 200  # Stripe delivers it again meanwhile
    assert time.monotonic() - started < 1  # not held until the worker's commit

    tell(do="die").join(10)
    assert apply_received_events() == 1
    assert apply_received_events() == 0
    assert balance(customer.user)[2] == 100


def test_a_resent_event_stored_without_its_customer_gets_it(client, customer, catalog):
    """A given-up event stored before the column existed: Stripe's Resend fills it in, so the
    event applies under its customer's lock like any other."""
    refund = refund_event(customer, "pi_cs_old", "re_old", 1000)
    assert post_signed(client, refund) == 200
    ReceivedStripeEvent.objects.update(state="failed", customer_id="")

    assert post_signed(client, refund) == 200

    row = ReceivedStripeEvent.objects.get()
    assert (row.state, row.customer_id) == ("pending", customer.stripe_customer_id)


@pytest.mark.django_db(transaction=True)
def test_a_hung_worker_is_cut_off_and_its_event_applied_by_another(client, customer, catalog):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    tell, outcome = _hold_in_another_worker(event["id"], hold_limit=timedelta(seconds=1))
    hung = tell(hang="5")  # idle in its transaction, past its hold limit

    started = time.monotonic()
    while (result := webhook_queue.apply_received_event(event["id"])) == "absent":
        assert time.monotonic() - started < 10, "the hung worker kept the event"
        time.sleep(0.1)
    waited = time.monotonic() - started
    hung.join(10)

    assert result == "applied"
    assert waited < 4.5  # cut off by the server, not let go when it woke up
    assert isinstance(outcome.get("error"), DatabaseError)  # its session was ended
    assert event_state(event) == ("processed", 1)
    assert balance(customer.user)[2] == 100


def test_the_periodic_run_applies_every_due_event(client, customer, catalog):
    events = [purchase_completed(customer, catalog["pack"]) for _ in range(3)]
    for event in events:
        assert post_signed(client, event) == 200

    assert webhook_queue.apply_due_stripe_events.call() == 3
    assert webhook_queue.apply_due_stripe_events.call() == 0
    assert balance(customer.user)[2] == 300


def test_on_another_task_backend_a_stored_event_needs_no_job(
    client, customer, catalog, settings, django_capture_on_commit_callbacks
):
    """Every worker reads the table in its own thread whatever the task backend (RQ's too), so
    the request sends no job: one statement is all a delivery costs."""
    from django_tasks.backends.dummy import DummyBackend

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    backend = webhook_queue.apply_due_stripe_events.get_backend()
    assert isinstance(backend, DummyBackend)
    event = purchase_completed(customer, catalog["pack"])

    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed(client, event) == 200

    assert backend.results == []
    assert webhook_queue.apply_next_due_event() is True  # what the worker's thread runs
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


def test_a_failure_recorded_after_another_worker_applied_the_event_changes_nothing(
    client, customer, catalog
):
    refund = refund_event(customer, "pi_cs_race", "re_race", 1000)
    assert post_signed(client, refund) == 200
    # A worker's attempt read before the payment came in, and rolled back; before it
    # records its failure, the payment arrives and another worker applies the refund.
    slow = DueEvent(refund["id"], refund["type"], json.dumps(refund), failures=0)
    payment = purchase_completed(customer, catalog["pack"], session_id="cs_race")
    assert post_signed(client, payment) == 200
    assert webhook_queue.apply_received_event(payment["id"]) == "applied"
    assert webhook_queue.apply_received_event(refund["id"]) == "applied"
    assert event_state(refund) == ("processed", 1)

    error = MissingPrerequisite("no payment")
    assert webhook_queue._attempt_failed(slow, error) == "stale"

    assert event_state(refund) == ("processed", 1)
    assert not WebhookFailure.objects.exists()
    assert open_webhook_failure_count() == 0


def test_a_last_attempt_failing_late_does_not_give_up_an_event_another_worker_applied(
    client, customer, catalog
):
    event = purchase_completed(customer, catalog["pack"])
    assert post_signed(client, event) == 200
    last = webhook_queue.MAX_ATTEMPTS - 1
    ReceivedStripeEvent.objects.update(attempts=last)
    slow = DueEvent(event["id"], event["type"], json.dumps(event), failures=last)
    assert webhook_queue.apply_received_event(event["id"]) == "applied"  # another worker

    error = RuntimeError("connection reset")
    assert webhook_queue._attempt_failed(slow, error) == "stale"

    assert event_state(event)[0] == "processed"
    assert not WebhookFailure.objects.exists()
    assert balance(customer.user)[2] == 100


def test_two_workers_failing_the_same_attempt_count_it_once(client, customer, catalog):
    refund = refund_event(customer, "pi_twice", "re_twice", 1000)
    assert post_signed(client, refund) == 200
    first = DueEvent(refund["id"], refund["type"], json.dumps(refund), failures=0)
    second = DueEvent(refund["id"], refund["type"], json.dumps(refund), failures=0)

    assert webhook_queue._attempt_failed(first, MissingPrerequisite("no payment")) == "retrying"
    assert webhook_queue._attempt_failed(second, MissingPrerequisite("no payment")) == "stale"

    assert event_state(refund) == ("pending", 1)
    assert WebhookFailure.objects.get().attempts == 1


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
