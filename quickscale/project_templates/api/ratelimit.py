"""A fixed-window request counter per API key, in Django's cache.

The cache is shared by every worker (the database cache table, or Redis when
``REDIS_URL`` is set), so the limit holds across processes. ``cache.add``
creates the window's counter atomically and ``cache.incr`` increments it
atomically on both backends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may proceed, and if not, how many seconds until it may."""

    allowed: bool
    retry_after: int


def hit(key_id: int, *, now: float | None = None) -> RateDecision:
    """Count one request of key ``key_id`` and decide whether it is within the limit."""
    limit = int(settings.API_RATE_LIMIT_PER_MINUTE)
    if limit <= 0:
        return RateDecision(allowed=True, retry_after=0)
    moment = time.time() if now is None else now
    window = int(moment // WINDOW_SECONDS)
    counter = f"api-rate:{key_id}:{window}"
    cache.add(counter, 0, timeout=WINDOW_SECONDS * 2)
    try:
        count = cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.add(counter, 1, timeout=WINDOW_SECONDS * 2)
        count = 1
    retry_after = max(1, int((window + 1) * WINDOW_SECONDS - moment))
    return RateDecision(allowed=count <= limit, retry_after=retry_after)
