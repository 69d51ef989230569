"""A fixed-window counter in the shared cache (database or Redis)."""

from django.core.cache import cache


def hit(key: str, *, limit: int, period_seconds: int) -> bool:
    """Count one event under ``key``; return False once more than ``limit`` happened.

    The window starts with the first event and lasts ``period_seconds``. The cache
    is shared by all worker processes (DESIGN.md), so the limit holds across them.
    """
    cache_key = f"ratelimit:{key}"
    if cache.add(cache_key, 1, timeout=period_seconds):
        return limit >= 1
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add() and incr()
        cache.add(cache_key, 1, timeout=period_seconds)
        count = 1
    return count <= limit
