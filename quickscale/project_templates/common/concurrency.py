"""Bounds on concurrent service calls, so one caller cannot take every worker and connection.

``with call_slot(key):`` runs its body only while it holds two slots, and
raises ``CallSlotsBusy`` at once (it never waits) when either is full:

- one of the process's ``SERVICE_MAX_CONCURRENT_PER_PROCESS`` slots (a
  semaphore): a request holds a pooled database connection for as long as it
  runs, so the bound stays below the pool and pages keep connections to serve;
- one of ``key``'s ``SERVICE_MAX_CONCURRENT_PER_KEY`` slots, shared by every
  process: a ``CallSlot`` row claimed with one upsert (insert, or take over a
  row whose lease has expired) and deleted when the call ends. A process that
  dies mid-call leaves its row behind; it frees itself after
  ``SERVICE_CALL_TIMEOUT_SECONDS``. A release the database refused (an outage
  mid-call) is tried again by the process's next call, so a key's slots come
  back as soon as the database does. Rows rather than PostgreSQL advisory locks,
  because session locks do not survive a connection pooler in transaction mode.

Call it outside a database transaction, so other processes see the claim.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from common.models import CallSlot

logger = logging.getLogger(__name__)

# Calls end on their own, usually within seconds: a client may try again soon.
RETRY_AFTER_SECONDS = 1
KEY_MAX_LENGTH = 200


class CallSlotsBusy(Exception):
    """Too many calls are running already, for this key or in this process."""

    retry_after = RETRY_AFTER_SECONDS

    def __init__(self, *, per_key: bool) -> None:
        self.per_key = per_key
        if per_key:
            message = (
                f"At most {settings.SERVICE_MAX_CONCURRENT_PER_KEY} calls may run at once. "
                "Wait for one to finish and try again."
            )
        else:
            message = "The server is running as many calls as it can. Try again in a moment."
        super().__init__(message)


@dataclass(frozen=True)
class Lease:
    """A claimed slot of a key; ``token`` proves who holds it."""

    key: str
    slot: int
    token: str


class _ProcessSlots:
    """The process's semaphore, rebuilt when its setting changes (as tests do)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._size = 0
        self._semaphore = threading.BoundedSemaphore(1)

    def current(self) -> threading.BoundedSemaphore:
        size = int(settings.SERVICE_MAX_CONCURRENT_PER_PROCESS)
        with self._lock:
            if size != self._size:
                self._size, self._semaphore = size, threading.BoundedSemaphore(size)
            return self._semaphore


_process_slots = _ProcessSlots()

# Leases whose release the database refused; bounded, since each also expires.
_UNRELEASED_MAX = 1000
_unreleased: list[Lease] = []
_unreleased_lock = threading.Lock()


@contextmanager
def call_slot(key: str) -> Iterator[None]:
    """Hold a process slot and a slot of ``key`` while the body runs; raise ``CallSlotsBusy``."""
    # The semaphore the call acquired is the one it releases, even if the setting changes.
    semaphore = _process_slots.current()
    if not semaphore.acquire(blocking=False):
        raise CallSlotsBusy(per_key=False)
    try:
        _release_leftovers()
        lease = claim_slot(key)
        if lease is None:
            raise CallSlotsBusy(per_key=True)
        try:
            yield
        finally:
            _release_quietly(lease)
    finally:
        semaphore.release()


def claim_slot(key: str, *, now: datetime | None = None) -> Lease | None:
    """Claim a free slot of ``key`` (one whose row is missing or expired); None if all are taken."""
    if len(key) > KEY_MAX_LENGTH:
        raise ValueError(f"Call slot key {key[:40]!r}... is longer than {KEY_MAX_LENGTH}.")
    moment = timezone.now() if now is None else now
    expires_at = moment + timedelta(seconds=settings.SERVICE_CALL_TIMEOUT_SECONDS)
    token = uuid.uuid4().hex
    table = CallSlot._meta.db_table
    with connection.cursor() as cursor:
        # Slot 0 first: with calls mostly one at a time, one statement claims a slot.
        for slot in range(settings.SERVICE_MAX_CONCURRENT_PER_KEY):
            cursor.execute(
                f"""
                INSERT INTO {table} AS held (key, slot, token, expires_at) VALUES (%s, %s, %s, %s)
                ON CONFLICT (key, slot) DO UPDATE
                    SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
                    WHERE held.expires_at <= %s
                RETURNING slot
                """,
                [key, slot, token, expires_at, moment],
            )
            if cursor.fetchone() is not None:
                return Lease(key=key, slot=slot, token=token)
    return None


def release_slot(lease: Lease) -> None:
    """Free ``lease``'s slot, unless it expired and another call has taken it since."""
    CallSlot.objects.filter(key=lease.key, slot=lease.slot, token=lease.token).delete()


def _release_quietly(lease: Lease) -> None:
    # With the database unreachable the call's own error is the one to report;
    # the slot then frees itself when its lease expires.
    try:
        release_slot(lease)
    except DatabaseError as error:
        logger.warning(
            "call slot not released; the next call retries, and it expires on its own",
            extra={"key": lease.key, "slot": lease.slot, "error": repr(error)},
        )
        with _unreleased_lock:
            if len(_unreleased) < _UNRELEASED_MAX:
                _unreleased.append(lease)


def _release_leftovers() -> None:
    """Release the slots earlier calls of this process could not; keep those still refused."""
    with _unreleased_lock:
        if not _unreleased:
            return
        pending = _unreleased[:]
        _unreleased.clear()
    for index, lease in enumerate(pending):
        try:
            release_slot(lease)
        except DatabaseError:
            with _unreleased_lock:
                _unreleased.extend(pending[index:])
            return
