"""Webhook events stored when they arrive, applied by the worker (as Stripe recommends).

Why: applying an event (claim, grant, payment, receipt) inside the request made
every delivery cost a dozen round trips and a synchronous commit while Stripe
waited, about a tenth of what the endpoint could answer (``bench/webhooks.py``).

- **Receiving** (:func:`receive`, the webhook view): the verified event is
  stored once by its Stripe id, in one statement (``ReceivedStripeEvent``; a
  duplicate changes nothing), and Stripe gets its 200. The row is the work
  item: it holds the body as Stripe signed it and when to try it next. A
  trigger (migration ``stripe_manager.0007``) wakes idle database workers as an
  enqueued task does (``common.task_wakeup``).
- **Applying** (:func:`apply_next_due_event`): every ``manage.py worker``, on
  either backend, takes the oldest due event in a thread of its own
  (``WORKER_SOURCES``, ``common.task_worker.SourceRunner``), so events never
  wait behind a long task: one statement claims
  it (``SKIP LOCKED``, counting the attempt, leased for :data:`LEASE`), then
  today's processing, unchanged (``webhooks.process_event``: the
  ``ProcessedStripeEvent`` claim, the per-customer advisory lock, the
  first-attempt insert), which marks the row processed in the event's own
  transaction. On the RQ backend the request enqueues
  :func:`apply_due_stripe_events` after its commit; the periodic run of it
  catches retries and anything missed on either backend.
- **Retrying**: Stripe retried a 500 for us before; now a failed attempt
  (above all ``MissingPrerequisite``: a refund before its payment, an invoice
  before its price) is counted in ``WebhookFailure`` (staff dashboard,
  ``/metrics``) and the event is due again after :data:`RETRY_DELAYS`, about
  three days in all as Stripe's own schedule; after the last it is given up
  (``failed``), logged as an error and its failure left unresolved. Stripe's
  "Resend" of a given-up event arms it again, and of one waiting for its next
  attempt makes it due at once (so does the admin's "Apply now").
- **A worker that dies** mid-event leaves the event leased; once the lease
  lapses, it is due again (the attempt counted). Applying it twice is
  harmless: the ``ProcessedStripeEvent`` claim is the dedupe. An event whose
  workers keep dying is given up after :data:`MAX_ATTEMPTS` as any other. A
  worker that fails after its lease lapsed changes nothing: the attempt is
  another worker's now (the row's ``attempts`` moved on), or the event is done.
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

from common.task_queue import enqueue_with_transaction, queue_is_database
from stripe_manager.exceptions import MissingPrerequisite
from stripe_manager.models import ReceivedStripeEvent
from stripe_manager.webhooks import process_event, record_failure

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
# How long a claimed event is left to its worker: far longer than applying one
# takes, so only a worker that died lets it lapse.
LEASE = timedelta(minutes=5)
# Events one run of apply_due_stripe_events applies at most; the next run takes the rest.
DRAIN_BATCH = 1000
# Rows one run of prune_stripe_events deletes at most; the next run takes the rest.
PRUNE_BATCH = 5000

PENDING = ReceivedStripeEvent.State.PENDING
PROCESSED = ReceivedStripeEvent.State.PROCESSED
FAILED = ReceivedStripeEvent.State.FAILED


# --------------------------------------------------------------------------- receiving


def receive(event_id: str, event_type: str, body: str) -> bool:
    """Store a verified event once, to be applied by the worker; False for one stored before
    (unless it was given up and is armed again).

    One statement, in autocommit (SQL on purpose: the ORM needs a savepoint
    around an insert that may clash). An event given up before is armed again
    (Stripe's "Resend"); a pending one waiting for its next attempt is due now
    (a leased one too: a second worker may take it beside the first, which the
    ``ProcessedStripeEvent`` claim makes harmless); a processed one is left as it is.
    """
    table = connection.ops.quote_name(ReceivedStripeEvent._meta.db_table)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH before AS (SELECT state FROM {table} WHERE event_id = %s)
            INSERT INTO {table} AS e (event_id, event_type, payload, state, attempts,
                                      received_at, next_attempt_at)
            VALUES (%s, %s, %s, %s, 0, %s, %s)
            ON CONFLICT (event_id) DO UPDATE SET
                state = EXCLUDED.state,
                attempts = CASE WHEN e.state = %s THEN 0 ELSE e.attempts END,
                payload = EXCLUDED.payload,
                next_attempt_at = CASE WHEN e.state = %s THEN EXCLUDED.next_attempt_at
                    ELSE LEAST(e.next_attempt_at, EXCLUDED.next_attempt_at) END
            WHERE e.state <> %s
            RETURNING NOT EXISTS (SELECT 1 FROM before WHERE state = %s)
            """,
            [
                *(event_id, event_id, event_type, body, PENDING, now, now),
                *(FAILED, FAILED, PROCESSED, PENDING),
            ],
        )
        row = cursor.fetchone()
        # A pending event pulled forward is not new: a job (RQ) was sent for it already.
        stored = row is not None and bool(row[0])
    if stored and not queue_is_database(apply_due_stripe_events):
        # Database workers take it from the table (woken by its trigger); RQ's need a job.
        enqueue_with_transaction(apply_due_stripe_events)
    return stored


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
    if armed_count and not queue_is_database(apply_due_stripe_events):
        enqueue_with_transaction(apply_due_stripe_events)
    return pulled + armed_count


# --------------------------------------------------------------------------- applying


def apply_next_due_event() -> bool:
    """Apply the oldest due event, if any (the database worker's source); False when none."""
    claimed = _claim_due()
    if claimed is None:
        return False
    _apply(*claimed)
    return True


def apply_received_event(event_id: str) -> str:
    """Apply the event ``event_id`` now if it is due; what happened: applied, duplicate,
    retrying, failed, stale (failed after its lease lapsed), or absent (not due: applied,
    given up, leased or waiting)."""
    claimed = _claim_due(event_id)
    return "absent" if claimed is None else _apply(*claimed)


@task()
def apply_due_stripe_events() -> int:
    """Apply every due event (RQ's job per delivery, and a periodic catch-up); how many."""
    applied = 0
    while applied < DRAIN_BATCH and apply_next_due_event():
        applied += 1
    return applied


def _claim_due(event_id: str = "") -> tuple[str, str, str, int] | None:
    """Lease the oldest due event (or ``event_id``, when due), counting the attempt."""
    table = connection.ops.quote_name(ReceivedStripeEvent._meta.db_table)
    now = timezone.now()
    only = "AND event_id = %s" if event_id else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET next_attempt_at = %s, attempts = attempts + 1
            WHERE id = (
                SELECT id FROM {table}
                WHERE state = %s AND next_attempt_at <= %s {only}
                ORDER BY next_attempt_at, id LIMIT 1
                FOR UPDATE SKIP LOCKED
            )
            RETURNING event_id, event_type, payload, attempts
            """,
            [now + LEASE, PENDING, now, *([event_id] if event_id else [])],
        )
        row = cursor.fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]), int(row[3]))


def _apply(event_id: str, event_type: str, payload: str, attempt: int) -> str:
    if attempt > MAX_ATTEMPTS:
        # Only a lapsed lease counts an attempt without an outcome: its workers keep dying
        # on it (killed for memory, say). Given up as a failing one, and counted.
        lost = RuntimeError(f"worker lost this event {attempt - 1} times")
        return _attempt_failed(event_id, event_type, attempt, lost)
    try:
        event = json.loads(payload)  # verified and bounded when it was received
        applied = process_event(event)
    except Exception as error:
        return _attempt_failed(event_id, event_type, attempt, error)
    return "applied" if applied else "duplicate"


def _attempt_failed(event_id: str, event_type: str, attempt: int, error: Exception) -> str:
    """Count the failure (``WebhookFailure``) and set the next attempt, or give the event up.

    Only while the attempt is still this worker's (pending, its ``attempts``
    unchanged): after a lapsed lease another worker may have applied the event,
    or be trying it, and a late failure must neither record an open failure
    for it nor give it up.
    """
    extra: dict[str, Any] = {"event_id": event_id, "event_type": event_type, "attempt": attempt}
    row = ReceivedStripeEvent.objects.filter(event_id=event_id, state=PENDING, attempts=attempt)
    with transaction.atomic():
        if attempt >= MAX_ATTEMPTS:
            if not row.update(state=FAILED):
                return _stale(extra, error)
            record_failure(event_id, event_type, error)
            logger.error(
                "stripe event given up",
                extra={**extra, "error": f"{type(error).__name__}: {error}"[:2000]},
            )
            return "failed"
        delay = RETRY_DELAYS[attempt - 1]
        if not row.update(next_attempt_at=timezone.now() + delay):
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
        "stripe event attempt failed after its lease lapsed; left to the next",
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
