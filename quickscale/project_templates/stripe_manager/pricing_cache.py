"""The rendered pricing section in Django's cache, dropped whenever the catalog changes.

Each process also keeps the copy it last read or wrote for ``LOCAL_SECONDS``: the
landing page is the busiest page of the site, and with the default database
cache every read of the shared copy is a query (with Redis, a round trip) that
costs the page about a quarter of its requests a second. A catalog change drops
this process's copy when its transaction commits; every other process reads the
shared copy again at most ``LOCAL_SECONDS`` later
(``stripe_manager/tests/test_landing.py`` holds it to that bound).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction

# Bounds how long a catalog write that bypasses the ORM (raw SQL) can stay unseen.
TIMEOUT_SECONDS = 300
_KEYS = {True: "stripe_manager:pricing_section:on", False: "stripe_manager:pricing_section:off"}
# How long another process may keep showing a catalog this one has changed.
LOCAL_SECONDS = 5.0
# payments_enabled -> (deadline on _clock, html)
_local: dict[bool, tuple[float, str]] = {}
_clock: Callable[[], float] = time.monotonic  # tests move it forward


def get(payments_enabled: bool) -> str | None:
    now = _clock()
    copy = _local.get(payments_enabled)
    if copy is not None and now < copy[0]:
        return copy[1]
    html = cache.get(_KEYS[payments_enabled])
    if not isinstance(html, str):
        return None
    _local[payments_enabled] = (now + LOCAL_SECONDS, html)
    return html


def put(payments_enabled: bool, html: str) -> None:
    cache.set(_KEYS[payments_enabled], html, TIMEOUT_SECONDS)
    _local[payments_enabled] = (_clock() + LOCAL_SECONDS, html)


def forget_local() -> None:
    """Drop this process's copy only (tests start each case with none)."""
    _local.clear()


def forget() -> None:
    """Drop the cached section for every visitor, once the current transaction commits.

    After the commit, so a page rendered meanwhile cannot store the old catalog
    again after it was dropped.
    """
    transaction.on_commit(_forget_now)


def _forget_now() -> None:
    cache.delete_many(list(_KEYS.values()))
    _local.clear()


def forget_on_change(sender: Any, **kwargs: Any) -> None:
    """``post_save`` / ``post_delete`` receiver for ``StripeProduct``."""
    forget()
