"""Emails through an outbox: recorded with what caused them, sent by the worker, retried.

Design (a transactional outbox whose rows are the worker's work items):

- :func:`email_queue` writes a :class:`~common.models.QueuedEmail` row in the
  caller's transaction, in one statement and nothing else: the email exists
  exactly when what caused it (a payment, a sign-up) committed, and a
  rolled-back request leaves nothing to send. No task is enqueued (no task row
  on the database backend, no Redis job on RQ): the row is the work item, as a
  stored Stripe event is (``stripe_manager.webhook_queue``). A trigger on the
  table (migration ``common.0005``) sends the notice an enqueued task sends
  (``common.task_wakeup``), so an idle worker starts on it at once.
- The row names a *builder*, a module-level function of the app that owns the
  email, and its plain JSON parameters (ids and strings). The worker calls it at
  send time, so the email reads the database as it is then (a deleted account
  gets nothing) and no object is ever pickled into the queue. ``common`` knows the
  builders only by their dotted paths, so it imports no app above it.
- :func:`send_next_due_email` is a work source of ``manage.py worker``
  (``WORKER_SOURCES``, run by ``common.task_worker.SourceRunner`` in a thread of
  its own, on either task backend): one statement claims the oldest due email
  (``SKIP LOCKED``, so two workers never take the same one; counting the
  attempt, held until ``claimed_until``), then it is built, sent and marked
  sent once the mail server accepted it. The same ``key`` queued twice is one
  email (``receipt:12`` is sent once however many events ask for it).
- A failure (refused, timed out after ``EMAIL_TIMEOUT``, a 4xx answer) makes the
  row due again after ``EMAIL_RETRY_SECONDS``, doubling each time (at most an
  hour), until ``EMAIL_MAX_ATTEMPTS``; then the email is given up and logged as
  an error with what was lost. A 5xx refusal of the recipient or the message is
  final at once. Staff's "send again" (:func:`email_retry`) makes a given-up
  row due again; the worker finds it at its next poll.
- A worker that dies mid-send leaves its claim; once the claim lapses the email
  is simply due again (the attempt counted), and after ``EMAIL_MAX_ATTEMPTS``
  such attempts it is given up like a failing one. Nothing needs a sweep: no
  task can be lost, since there is none.

An email is never lost, but can be sent twice: when a worker dies after the mail
server accepted the message but before it marked the row sent; when a send
outlives its claim (a very slow exchange, a paused process) and another worker
takes the email meanwhile; when the server accepted it but answered after
``EMAIL_TIMEOUT`` (recorded as a failure, so retried). Each write a worker makes
to the row applies only while its claim holds (``claimed_until`` is still the one
it set, the row still pending): a late worker logs a warning and changes nothing,
so it never undoes what the worker that took the email over records.
"""

from __future__ import annotations

import inspect
import logging
import smtplib
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from common.email import RenderedEmail, SendError, deliver
from common.models import QueuedEmail

logger = logging.getLogger(__name__)

Builder = Callable[..., RenderedEmail | None]

# Longest wait between two attempts, however many failed before.
MAX_RETRY_DELAY = timedelta(hours=1)
# The shortest claim: a claim that lapses means its worker died or stalled (see _claim_due).
LEASE = timedelta(minutes=10)


class EmailParameterError(TypeError):
    """An email was queued with parameters its builder cannot take or the queue cannot carry."""


# --------------------------------------------------------------------------- queueing


def email_queue(
    builder: Builder, *, key: str = "", secret: bool = False, **params: Any
) -> QueuedEmail:
    """Record an email for the worker to send once the current transaction commits; return
    its row.

    ``builder`` is a module-level function returning the :class:`RenderedEmail`
    (or None: nothing to send any more), called by the worker with ``params``,
    which must be plain JSON values (ids, strings). ``key`` names the logical
    email: queued again under the same key, it is the same email, sent once.
    ``secret`` marks parameters that hold a secret (a reset link): they are
    erased from the row once the email is sent or given up.
    Raises :class:`EmailParameterError` and records nothing when the builder or
    its parameters are not usable.
    """
    path = _dotted_path(builder)
    _check_plain(params, where=path)
    try:
        inspect.signature(builder).bind(**params)
    except TypeError as error:
        raise EmailParameterError(f"{path} cannot take {sorted(params)}: {error}.") from None
    key = key or f"{builder.__name__}:{uuid.uuid4().hex}"
    email = QueuedEmail(key=key, builder=path, params=params, secret=secret)
    # One statement, no savepoint, and all it costs: INSERT ... ON CONFLICT (key)
    # DO UPDATE SET key = key RETURNING id gives the id of the new row or of the
    # row already queued under this key (waiting for a concurrent queuer's
    # commit), and leaves that row as it is. The table's trigger wakes the
    # workers at commit. Emails are queued inside webhooks and sign-ups, where
    # every statement counts.
    QueuedEmail.objects.bulk_create(
        [email], update_conflicts=True, unique_fields=["key"], update_fields=["key"]
    )
    logger.info("email queued", extra={"email_id": email.pk, "key": key, "builder": path})
    return email


def _dotted_path(builder: Builder) -> str:
    path = f"{builder.__module__}.{builder.__qualname__}"
    try:
        found = import_string(path)
    except ImportError:
        found = None
    if found is not builder:
        raise EmailParameterError(
            f"{path} is not importable by that name; an email builder must be a "
            "module-level function, found again by the worker."
        )
    return path


def _check_plain(value: Any, *, where: str) -> None:
    """Only JSON's own types: what the worker gets back is exactly what was queued."""
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_plain(item, where=where)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise EmailParameterError(f"{where}: parameter names must be strings.")
            _check_plain(item, where=where)
        return
    raise EmailParameterError(
        f"{where}: {type(value).__name__} is not a plain value; pass ids and strings "
        "(str(amount), a date's isoformat()) and let the builder read the rest."
    )


# --------------------------------------------------------------------------- sending


def send_next_due_email() -> bool:
    """Send the oldest due email, if any (the worker's source); False when none was due.

    Due: pending, its next attempt come, and claimed by no live worker. A
    failure is recorded on the row (retried later or given up), never raised.
    """
    email = _claim_due()
    if email is None:
        return False
    max_attempts = int(settings.EMAIL_MAX_ATTEMPTS)
    if email.attempts > max_attempts:
        # Only a lapsed claim counts an attempt without an outcome: its workers keep
        # dying on it (killed for memory while building it, say). Given up as a failing one.
        _failed(email, RuntimeError(f"worker lost this email {email.attempts - 1} times"))
        return True
    _send(email)
    return True


def _claim_due() -> QueuedEmail | None:
    """Claim the oldest due email for this worker, counting the attempt; None if none is due.

    One statement: the row is picked and claimed together, ``SKIP LOCKED`` so a
    second worker passes over it to the next one instead of waiting.
    """
    table = connection.ops.quote_name(QueuedEmail._meta.db_table)
    now = timezone.now()
    timeout = int(settings.EMAIL_TIMEOUT or 60)
    # Far longer than one send should take (each SMTP step gives up after EMAIL_TIMEOUT):
    # a claim that lapses means its worker died or stalled, and the email is due again.
    until = now + max(LEASE, timedelta(seconds=10 * timeout))
    # raw() maps the returned row onto the model, JSON parameters decoded.
    claimed = QueuedEmail.objects.raw(
        f"""
        UPDATE {table} SET claimed_until = %s, attempts = attempts + 1
        WHERE id = (
            SELECT id FROM {table}
            WHERE state = %s AND next_attempt_at <= %s
                AND (claimed_until IS NULL OR claimed_until < %s)
            ORDER BY next_attempt_at, id LIMIT 1
            FOR UPDATE SKIP LOCKED
        )
        RETURNING *
        """,
        [until, QueuedEmail.State.PENDING, now, now],
    )
    return next(iter(claimed), None)


def _send(email: QueuedEmail) -> None:
    try:
        rendered = import_string(email.builder)(**email.params)
        if rendered is None:
            if _finish(email, QueuedEmail.State.SKIPPED):
                logger.info("email skipped: nothing to send", extra={"key": email.key})
            return
        # Also the last look at the claim before sending: a worker that stalled while
        # building does not send what another worker has taken since.
        if not _update_claimed(
            email, recipients=", ".join(rendered.to)[:500], subject=rendered.subject[:300]
        ):
            return
        email.recipients = ", ".join(rendered.to)
        deliver(rendered)
    except SendError as error:
        _failed(email, error)
        return
    except Exception as error:
        # A bug or a database hiccup while rendering: logged with its traceback and
        # retried like a send failure (bounded), so a fixed bug still gets it out.
        logger.exception("email could not be built", extra={"key": email.key})
        _failed(email, error)
        return
    if _finish(email, QueuedEmail.State.SENT):
        logger.info(
            "email sent",
            extra={"key": email.key, "to": email.recipients, "attempts": email.attempts},
        )


def _update_claimed(email: QueuedEmail, **fields: Any) -> bool:
    """Write ``fields`` to the row while this worker's claim holds; False when it does not.

    The claim holds while the row is pending and its ``claimed_until`` is the one
    this claim set. Once it lapsed, another worker may have taken the email and be
    sending it, or have sent it: this worker's outcome is stale and is dropped, so
    it never clears the other's claim nor turns a sent email into a failed one.
    """
    updated = QueuedEmail.objects.filter(
        pk=email.pk, state=QueuedEmail.State.PENDING, claimed_until=email.claimed_until
    ).update(**fields)
    if not updated:
        logger.warning(
            "email claim lapsed; left to the worker that took it",
            extra={"key": email.key, "attempts": email.attempts},
        )
    return bool(updated)


def _finish(email: QueuedEmail, state: str, *, error: str = "") -> bool:
    """Record the email's outcome and end the claim; False when the claim had lapsed."""
    return _update_claimed(
        email,
        state=state,
        claimed_until=None,
        last_error=error,
        sent_at=timezone.now() if state == QueuedEmail.State.SENT else None,
        **({"params": {}} if email.secret else {}),
    )


def _failed(email: QueuedEmail, error: Exception) -> None:
    """Retry later with a doubling delay, or give up after the last attempt."""
    message = f"{type(error).__name__}: {error}"[:2000]
    max_attempts = int(settings.EMAIL_MAX_ATTEMPTS)
    if _permanent(error) or email.attempts >= max_attempts:
        if not _finish(email, QueuedEmail.State.FAILED, error=message):
            return
        logger.error(
            "email given up",
            extra={
                "key": email.key,
                "builder": email.builder,
                "params": "(secret)" if email.secret else email.params,
                "to": email.recipients,
                "attempts": email.attempts,
                "error": message,
            },
        )
        return
    delay = retry_delay(email.attempts)
    next_attempt_at = timezone.now() + delay
    if not _update_claimed(
        email, claimed_until=None, next_attempt_at=next_attempt_at, last_error=message
    ):
        return
    logger.warning(
        "email not sent; retrying",
        extra={
            "key": email.key,
            "attempts": email.attempts,
            "retry_in_seconds": int(delay.total_seconds()),
            "error": message,
        },
    )


def retry_delay(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: EMAIL_RETRY_SECONDS, doubled each time."""
    base = int(settings.EMAIL_RETRY_SECONDS)
    return min(timedelta(seconds=base * 2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY)


def _permanent(error: Exception) -> bool:
    """A 5xx refusal of every recipient or of the message: sending it again cannot work."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(
            int(code) >= 500 for code, _ in error.recipients.values()
        )
    return isinstance(error, smtplib.SMTPDataError) and error.smtp_code >= 500


def email_retry(email_ids: list[int]) -> int:
    """Give emails that were given up a new round of attempts; return how many.

    For staff, once the cause is fixed (the mail server's address, a template):
    the rows are due again, and a worker sends them at its next poll. Emails
    whose secret parameters were erased cannot be built again and are left.
    """
    with transaction.atomic():
        ids = list(
            QueuedEmail.objects.select_for_update()
            .filter(pk__in=email_ids, state=QueuedEmail.State.FAILED, secret=False)
            .values_list("pk", flat=True)
        )
        QueuedEmail.objects.filter(pk__in=ids).update(
            state=QueuedEmail.State.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            claimed_until=None,
        )
    logger.info("emails retried", extra={"email_ids": ids})
    return len(ids)
