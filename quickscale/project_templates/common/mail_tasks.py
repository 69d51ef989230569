"""Emails through the task queue: recorded with what caused them, sent by a worker, retried.

Design (a transactional outbox):

- :func:`email_queue` writes a :class:`~common.models.QueuedEmail` row in the
  caller's transaction: the email exists exactly when what caused it (a payment,
  a sign-up) committed, and a rolled-back request leaves nothing to send. It
  enqueues :func:`send_queued_email` with the row's id (the task carries
  nothing else) in that transaction on the database backend, once it commits
  on Redis (``common.task_queue``).
- The row names a *builder*, a module-level function of the app that owns the
  email, and its plain JSON parameters (ids and strings). The worker calls it at
  send time, so the email reads the database as it is then (a deleted account
  gets nothing) and no object is ever pickled into the queue. ``common`` knows the
  builders only by their dotted paths, so it imports no app above it.
- The worker claims the row for a while (``claimed_until``) before it sends and
  marks it sent after the mail server accepted it, so a second task for the same
  email (a retry, a sweep) sends nothing. The same ``key`` queued twice is one
  email (``receipt:12`` is sent once however many events ask for it).
- Django's task framework has no retry: a failure (refused, timed out after
  ``EMAIL_TIMEOUT``, a 4xx answer) re-enqueues the task with ``run_after`` after
  ``EMAIL_RETRY_SECONDS``, doubling each time (at most an hour), until
  ``EMAIL_MAX_ATTEMPTS``; then the email is given up and logged as an error with
  what was lost. A 5xx refusal of the recipient or the message is final at once.
- :func:`sweep_queued_emails` (periodic, from the scheduler) re-enqueues pending
  rows whose task was lost: the enqueue after commit failed (Redis down), or the
  worker died holding the claim. It is safe to run any time: a duplicate task
  finds the row claimed or sent and does nothing.

A mail server can accept a message and the worker die before it marks the row
sent; the sweep then sends it again. That window (one UPDATE) is the price of
never losing one; every other path sends at most once.
"""

from __future__ import annotations

import inspect
import logging
import smtplib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import task

from common.email import RenderedEmail, SendError, deliver
from common.models import QueuedEmail
from common.task_queue import enqueue_with_transaction

logger = logging.getLogger(__name__)

Builder = Callable[..., RenderedEmail | None]

# Longest wait between two attempts, however many failed before.
MAX_RETRY_DELAY = timedelta(hours=1)
# A pending email this far past its time has lost its task; the sweep enqueues it again.
STALL = timedelta(minutes=10)
# Rows the sweep re-enqueues per run; the next run takes the rest.
SWEEP_BATCH = 500


class EmailParameterError(TypeError):
    """An email was queued with parameters its builder cannot take or the queue cannot carry."""


# --------------------------------------------------------------------------- queueing


def email_queue(
    builder: Builder, *, key: str = "", secret: bool = False, **params: Any
) -> QueuedEmail:
    """Record an email to send once the current transaction commits; return its row.

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
    # One statement, no savepoint: INSERT ... ON CONFLICT (key) DO UPDATE SET key =
    # key RETURNING id gives the id of the new row or of the row already queued
    # under this key (waiting for a concurrent queuer's commit), and leaves that
    # row as it is. Emails are queued inside webhooks and sign-ups, where every
    # statement counts.
    QueuedEmail.objects.bulk_create(
        [email], update_conflicts=True, unique_fields=["key"], update_fields=["key"]
    )
    # A second task for the same email (the key was queued before) sends nothing.
    enqueue_with_transaction(send_queued_email, email.pk)
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


def _enqueue(email_id: int, *, run_after: datetime | None = None) -> None:
    """Enqueue the sending task; a failure only delays the email (the sweep finds it)."""
    sender = send_queued_email
    if run_after is not None:
        sender = sender.using(run_after=run_after)
    try:
        sender.enqueue(email_id)
    except Exception:
        logger.exception(
            "email task not enqueued; the sweep will enqueue it", extra={"email_id": email_id}
        )


# --------------------------------------------------------------------------- sending


@task()
def send_queued_email(email_id: int) -> None:
    """Send one queued email, unless it was sent, given up or is being sent elsewhere."""
    email = _claim(email_id)
    if email is None:
        return
    try:
        rendered = import_string(email.builder)(**email.params)
        if rendered is None:
            _finish(email, QueuedEmail.State.SKIPPED)
            logger.info("email skipped: nothing to send", extra={"key": email.key})
            return
        QueuedEmail.objects.filter(pk=email.pk).update(
            recipients=", ".join(rendered.to)[:500], subject=rendered.subject[:300]
        )
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
    _finish(email, QueuedEmail.State.SENT)
    logger.info(
        "email sent",
        extra={"key": email.key, "to": email.recipients, "attempts": email.attempts},
    )


def _claim(email_id: int) -> QueuedEmail | None:
    """Take the pending row for this worker (counting the attempt), or None."""
    now = timezone.now()
    timeout = int(settings.EMAIL_TIMEOUT or 60)
    # Far longer than one send can take (each SMTP step gives up after EMAIL_TIMEOUT):
    # a claim that lapses means its worker died, and the sweep may take the email.
    until = now + max(STALL, timedelta(seconds=10 * timeout))
    claimed = (
        QueuedEmail.objects.filter(pk=email_id, state=QueuedEmail.State.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=until, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return QueuedEmail.objects.get(pk=email_id)


def _finish(email: QueuedEmail, state: str, *, error: str = "") -> None:
    now = timezone.now()
    QueuedEmail.objects.filter(pk=email.pk).update(
        state=state,
        claimed_until=None,
        last_error=error,
        sent_at=now if state == QueuedEmail.State.SENT else None,
        **({"params": {}} if email.secret else {}),
    )


def _failed(email: QueuedEmail, error: Exception) -> None:
    """Retry later with a doubling delay, or give up after the last attempt."""
    message = f"{type(error).__name__}: {error}"[:2000]
    max_attempts = int(settings.EMAIL_MAX_ATTEMPTS)
    if _permanent(error) or email.attempts >= max_attempts:
        _finish(email, QueuedEmail.State.FAILED, error=message)
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
    QueuedEmail.objects.filter(pk=email.pk).update(
        claimed_until=None, next_attempt_at=next_attempt_at, last_error=message
    )
    logger.warning(
        "email not sent; retrying",
        extra={
            "key": email.key,
            "attempts": email.attempts,
            "retry_in_seconds": int(delay.total_seconds()),
            "error": message,
        },
    )
    _enqueue(email.pk, run_after=next_attempt_at)


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

    For staff, once the cause is fixed (the mail server's address, a template).
    Emails whose secret parameters were erased cannot be built again and are left.
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
        for email_id in ids:
            transaction.on_commit(partial(_enqueue, email_id))
    logger.info("emails retried", extra={"email_ids": ids})
    return len(ids)


# --------------------------------------------------------------------------- sweep


@task()
def sweep_queued_emails() -> int:
    """Enqueue again the pending emails whose task was lost; return how many."""
    now = timezone.now()
    stalled = list(
        QueuedEmail.objects.filter(state=QueuedEmail.State.PENDING, next_attempt_at__lt=now - STALL)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    if stalled:
        # Moved forward so the next sweep leaves them to this run's tasks for a while.
        QueuedEmail.objects.filter(pk__in=stalled).update(next_attempt_at=now)
        for email_id in stalled:
            _enqueue(email_id)
        logger.warning("stalled emails enqueued again", extra={"count": len(stalled)})
    return len(stalled)
