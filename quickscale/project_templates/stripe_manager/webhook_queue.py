"""Webhook events stored when they arrive, applied by the worker (as Stripe recommends).

Why: applying an event (claim, grant, payment, receipt) inside the request made
every delivery cost a dozen round trips and a synchronous commit while Stripe
waited, about a tenth of what the endpoint could answer (``bench/webhooks.py``).

- **Receiving** (:func:`receive`, the webhook view): the verified event is
  stored once by its Stripe id, with the customer it is about, in one
  statement (``ReceivedStripeEvent``; a duplicate changes nothing), and Stripe
  gets its 200. The row is the work item: it holds the body as Stripe signed
  it and when to try it next. A trigger (migration ``stripe_manager.0007``)
  wakes idle workers as an enqueued task does (``common.task_wakeup``).
- **Applying** (:func:`apply_next_due_event`): every ``manage.py worker``, on
  either backend, takes the oldest due event in a thread of its own
  (``WORKER_SOURCES``, ``common.task_worker.SourceRunner``), so events never
  wait behind a long task. One statement, the first of the event's own
  transaction, takes the row (``SKIP LOCKED``) and makes the
  ``ProcessedStripeEvent`` claim, takes the customer's advisory lock and marks
  the row processed (``webhooks.apply_due``); the handler follows, and all of
  it commits together. The periodic :func:`apply_due_stripe_events` is a
  catch-up for a project whose workers run no sources.
- **Retrying**: Stripe retried a 500 for us before; now a failed attempt
  (above all ``MissingPrerequisite``: a refund before its payment, an invoice
  before its price) is rolled back, then counted in the row and in
  ``WebhookFailure`` (staff dashboard, ``/metrics``), and the event is due
  again after :data:`RETRY_DELAYS`, about three days in all as Stripe's own
  schedule; after the last it is given up (``failed``), logged as an error and
  its failure left unresolved. Stripe's "Resend" of a given-up event arms it
  again, and of one waiting for its next attempt makes it due at once (so
  does the admin's "Apply now").
- **A worker that dies** mid-event lets the row go with its connection (the
  server rolls its transaction back): the event is due at once for the next
  worker, and the dead attempt is not counted. One that hangs is cut off
  after :data:`LEASE` idle in its transaction. A worker that fails after
  another took the event and moved it on changes nothing (the row's
  ``attempts`` or state moved on). The trade: an event that kills every
  worker that applies it (none is known; payloads are bounded) is retried
  until someone looks, rather than given up after ten deaths.
- **Keeping** customer details no longer than needed: a processed event's
  payload is dropped as it is applied, and its row deleted after
  ``STRIPE_EVENT_RETENTION_DAYS`` (:func:`prune_stripe_events`, periodic); a
  given-up event's payload is dropped when its customer's account is deleted
  (:func:`forget_given_up_events`; a pending one still applies, as financial
  history is kept).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tasks import task

from stripe_manager.exceptions import MissingPrerequisite
from stripe_manager.models import ReceivedStripeEvent
from stripe_manager.webhooks import AttemptFailed, DueEvent, apply_due, record_failure

logger = logging.getLogger(__name__)

# Wait after the n-th failed attempt: from seconds, for an event that overtook
# the one it needs, to a day; about three days in all, as long as Stripe
# retries an endpoint. The attempt after the last delay is the last.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# How long a worker may sit idle in the transaction that holds an event before the
# server cuts it off and lets the event go: far longer than applying one takes
# (a gateway call included), so only a hung worker reaches it.
LEASE = timedelta(minutes=5)
# Events one run of apply_due_stripe_events applies at most; the next run takes the rest.
DRAIN_BATCH = 1000
# Rows one run of prune_stripe_events deletes at most; the next run takes the rest.
PRUNE_BATCH = 5000

PENDING = ReceivedStripeEvent.State.PENDING
PROCESSED = ReceivedStripeEvent.State.PROCESSED
FAILED = ReceivedStripeEvent.State.FAILED


# --------------------------------------------------------------------------- receiving


def receive(event_id: str, event_type: str, body: str, customer_id: str = "") -> bool:
    """Store a verified event once, to be applied by the worker; False for one stored before
    (unless it was given up and is armed again).

    A new event costs one statement, in autocommit (SQL on purpose: the ORM
    needs a savepoint around an insert that may clash), kept as plain as it can
    be: it is all most deliveries do, and planning a larger one cost a third
    more. An event stored before takes a second (:func:`_rearm`).
    """
    table = connection.ops.quote_name(ReceivedStripeEvent._meta.db_table)
    # A customer id is a few dozen characters; a longer or mangled one is not ours anyway.
    customer_id = customer_id.replace("\x00", "")[:255]
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (event_id, event_type, customer_id, payload, state, attempts,
                                 received_at, next_attempt_at)
            SELECT %s, %s, %s, %s, %s, 0, %s, %s
            -- Not even tried for a stored event: the unique index would wait for a
            -- worker that has its row updated in an open transaction.
            WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE event_id = %s)
            ON CONFLICT (event_id) DO NOTHING
            RETURNING id
            """,
            [event_id, event_type, customer_id, body, PENDING, now, now, event_id],
        )
        if cursor.fetchone() is not None:
            return True
    return _rearm(event_id, customer_id, body)


def _rearm(event_id: str, customer_id: str, body: str) -> bool:
    """An event delivered again: one given up is armed again (Stripe's "Resend"), one
    waiting for its next attempt is due now, a processed one is left as it is; True only
    for one armed again.

    One being applied at that moment is left to its worker (its row is locked:
    ``SKIP LOCKED``), so a delivery never waits for a worker, even a hung one.
    """
    table = connection.ops.quote_name(ReceivedStripeEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH stored AS (
                SELECT id, state FROM {table}
                WHERE event_id = %(event_id)s AND state <> %(processed)s
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {table} AS e SET
                state = %(pending)s,
                attempts = CASE WHEN stored.state = %(failed)s THEN 0 ELSE e.attempts END,
                payload = %(payload)s,
                customer_id = %(customer_id)s,
                next_attempt_at = CASE WHEN stored.state = %(failed)s THEN %(now)s
                    ELSE LEAST(e.next_attempt_at, %(now)s) END
            FROM stored
            WHERE e.id = stored.id
            RETURNING stored.state
            """,
            {
                "event_id": event_id,
                "customer_id": customer_id,
                "payload": body,
                "now": timezone.now(),
                "pending": PENDING,
                "processed": PROCESSED,
                "failed": FAILED,
            },
        )
        row = cursor.fetchone()
    # A pending event pulled forward is not new.
    return row is not None and row[0] == FAILED


def apply_now(ids: list[int]) -> int:
    """Make the events ``ids`` due at once (the admin's "Apply now"); how many.

    A pending one keeps its attempt count (a worker holding it can still tell
    its attempt is stale); a given-up one starts over, as Stripe's "Resend"
    arms it. Processed events, and given-up ones whose details were erased,
    are left alone.
    """
    now = timezone.now()
    rows = ReceivedStripeEvent.objects.filter(id__in=ids)
    with transaction.atomic():
        pulled = rows.filter(state=PENDING).update(next_attempt_at=now)
        armed = rows.filter(state=FAILED).exclude(payload="")
        armed_count = armed.update(state=PENDING, attempts=0, next_attempt_at=now)
    return pulled + armed_count


# --------------------------------------------------------------------------- applying


def apply_next_due_event() -> bool:
    """Apply the oldest due event, if any (the worker's source); False when none was due."""
    return _attempt() != "absent"


def apply_received_event(event_id: str) -> str:
    """Apply the event ``event_id`` now if it is due; what happened: applied, duplicate,
    retrying, failed, stale (failed after another worker moved it on), or absent (not due:
    applied, given up, waiting, or being applied by another worker)."""
    return _attempt(event_id)


@task()
def apply_due_stripe_events() -> int:
    """Apply every due event (a periodic catch-up beside the workers' threads); how many."""
    applied = 0
    while applied < DRAIN_BATCH and apply_next_due_event():
        applied += 1
    return applied


def _attempt(event_id: str = "") -> str:
    try:
        outcome = apply_due(event_id, hold_limit=LEASE)
    except AttemptFailed as failed:
        return _attempt_failed(failed.due, failed.error)
    return outcome or "absent"


def _attempt_failed(due: DueEvent, error: Exception) -> str:
    """Count the failure (the row's ``attempts``, ``WebhookFailure``) and set the next
    attempt, or give the event up after the last.

    Only while the event is as this attempt found it (pending, its ``attempts``
    unchanged): its row was let go when the attempt rolled back, so another
    worker may have applied it since, or failed it too, and a late failure
    must neither record an open failure for it nor count twice.
    """
    attempt = due.failures + 1
    event_id, event_type = due.event_id, due.event_type
    extra: dict[str, Any] = {"event_id": event_id, "event_type": event_type, "attempt": attempt}
    row = ReceivedStripeEvent.objects.filter(
        event_id=event_id, state=PENDING, attempts=due.failures
    )
    with transaction.atomic():
        if attempt >= MAX_ATTEMPTS:
            if not row.update(state=FAILED, attempts=attempt):
                return _stale(extra, error)
            record_failure(event_id, event_type, error)
            logger.error(
                "stripe event given up",
                extra={**extra, "error": f"{type(error).__name__}: {error}"[:2000]},
            )
            return "failed"
        delay = RETRY_DELAYS[attempt - 1]
        if not row.update(attempts=attempt, next_attempt_at=timezone.now() + delay):
            return _stale(extra, error)
        record_failure(event_id, event_type, error)
    extra["retry_in_seconds"] = int(delay.total_seconds())
    if isinstance(error, MissingPrerequisite):
        extra["reason"] = str(error)
        logger.info("stripe event waits for another; retrying", extra=extra)
    else:
        logger.error("stripe event processing failed; retrying", exc_info=error, extra=extra)
    return "retrying"


def _stale(extra: dict[str, Any], error: Exception) -> str:
    logger.warning(
        "stripe event attempt failed after another worker moved it on; left to that one",
        extra={**extra, "error": f"{type(error).__name__}: {error}"[:2000]},
    )
    return "stale"


# --------------------------------------------------------------------------- keeping


def forget_given_up_events(customer_id: str) -> int:
    """Drop the payloads of the given-up events about ``customer_id`` (its account is being
    deleted); how many. Stripe's "Resend" still brings such an event back whole."""
    if not customer_id:
        return 0
    # The id quoted as a JSON string: "cus_1" must not match "cus_12".
    mentioned = ReceivedStripeEvent.objects.filter(
        state=FAILED, payload__contains=json.dumps(customer_id)
    )
    return mentioned.update(payload="")


@task()
def prune_stripe_events() -> int:
    """Delete processed events older than ``STRIPE_EVENT_RETENTION_DAYS`` (periodic); how many.

    The ``ProcessedStripeEvent`` claim, which dedupes a late redelivery, stays.
    """
    days = int(getattr(settings, "STRIPE_EVENT_RETENTION_DAYS", 30))
    cutoff = timezone.now() - timedelta(days=days)
    old = ReceivedStripeEvent.objects.filter(
        state=ReceivedStripeEvent.State.PROCESSED, processed_at__lt=cutoff
    ).values_list("id", flat=True)[:PRUNE_BATCH]
    deleted, _ = ReceivedStripeEvent.objects.filter(id__in=list(old)).delete()
    if deleted:
        logger.info("processed stripe events pruned", extra={"count": deleted, "days": days})
    return deleted
