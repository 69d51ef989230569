"""The project's one rate limiter: fixed windows counted atomically in shared storage.

``hit(scope, key, limit=..., window_seconds=...)`` counts one event and says
whether it is within ``limit`` for the current window. Windows are aligned to
the clock (a 60 s window runs from one whole minute to the next), so every
worker process agrees on them. Each hit is one atomic step on the backend
(``settings.RATE_LIMIT_BACKEND``), so concurrent requests in any number of
processes can never both take the last place:

- ``database``: one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on a row per
  key (``common.models.RateLimitCounter``) that starts over in place when a new
  window begins; the upsert never fails on a duplicate key, so it writes no
  error to the database log;
- ``redis`` (when ``REDIS_URL`` is set): ``INCR`` and ``EXPIREAT`` in one
  ``MULTI``/``EXEC`` transaction on a key per window, which Redis drops after
  the window ends.

Like any fixed window, a client can spend a window's limit at its very end and
the next window's at the very start of that one. Call ``hit`` outside a
database transaction: inside one, the counter row stays locked until it ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection

from common.models import RateLimitCounter

KEY_MAX_LENGTH = 200
# Rows of ended windows deleted at most per new window: enough to keep up with
# the keys that appear, small enough to stay a quick statement.
CLEANUP_BATCH = 100
REDIS_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one hit: allowed or not, the window's count, seconds until it resets."""

    allowed: bool
    retry_after: int
    count: int


def hit(
    scope: str, key: str, *, limit: int, window_seconds: int, now: float | None = None
) -> RateDecision:
    """Count one event of ``key`` in ``scope``; allowed while the window's count is <= ``limit``.

    ``now`` (seconds since the epoch) defaults to the current time. Every hit is
    counted, refused ones too, so a client that keeps retrying stays refused until
    the window ends.
    """
    if limit < 1 or window_seconds < 1:
        raise ValueError(
            f"limit and window_seconds must be at least 1, not {limit}, {window_seconds}."
        )
    name = f"{scope}:{key}"
    if len(name) > KEY_MAX_LENGTH:
        raise ValueError(f"Rate limit key {name[:40]!r}... is longer than {KEY_MAX_LENGTH}.")
    moment = time.time() if now is None else now
    window_ends = (math.floor(moment / window_seconds) + 1) * window_seconds
    if settings.RATE_LIMIT_BACKEND == "redis":
        count, ends = _hit_redis(name, window_ends), float(window_ends)
    else:
        count, ends = _hit_database(name, window_ends, moment)
    return RateDecision(
        allowed=count <= limit, retry_after=max(1, math.ceil(ends - moment)), count=count
    )


def _hit_database(name: str, window_ends: int, moment: float) -> tuple[int, float]:
    """Count the hit in the key's row; return the count and when its window ends.

    A row whose window ended starts over at 1. A process whose clock runs behind
    another's counts into the newer window already stored rather than resetting it.
    """
    table = RateLimitCounter._meta.db_table
    ends_at = datetime.fromtimestamp(window_ends, tz=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} AS counter (key, window_ends_at, count) VALUES (%s, %s, 1)
            ON CONFLICT (key) DO UPDATE SET
                count = CASE WHEN EXCLUDED.window_ends_at > counter.window_ends_at
                             THEN 1 ELSE counter.count + 1 END,
                window_ends_at = GREATEST(counter.window_ends_at, EXCLUDED.window_ends_at)
            RETURNING count, window_ends_at
            """,
            [name, ends_at],
        )
        row = cursor.fetchone()
        assert row is not None  # an upsert always returns its row
        count, stored_ends = int(row[0]), row[1]
        if count == 1:
            # A new window: drop a batch of rows whose window is over. Rows another
            # request holds right now are skipped rather than waited for.
            cursor.execute(
                f"""
                DELETE FROM {table} WHERE window_ends_at <= %s AND key IN (
                    SELECT key FROM {table} WHERE window_ends_at <= %s
                    LIMIT %s FOR UPDATE SKIP LOCKED
                )
                """,
                [datetime.fromtimestamp(moment, tz=UTC)] * 2 + [CLEANUP_BATCH],
            )
    return count, stored_ends.timestamp()


def _hit_redis(name: str, window_ends: int) -> int:
    """Count the hit in the window's own key, which expires when the window is over."""
    counter = f"ratelimit:{name}:{window_ends}"
    pipeline = _redis_client(settings.REDIS_URL).pipeline(transaction=True)
    pipeline.incr(counter)
    pipeline.expireat(counter, window_ends + 1)
    count, _ = pipeline.execute()
    return int(count)


@lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    """One client (with its connection pool) per URL, shared by the process's threads."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )
