"""The rendered pricing section in Django's cache, dropped whenever the catalog changes."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import transaction

# Bounds how long a catalog write that bypasses the ORM (raw SQL) can stay unseen.
TIMEOUT_SECONDS = 300
_KEYS = {True: "stripe_manager:pricing_section:on", False: "stripe_manager:pricing_section:off"}


def get(payments_enabled: bool) -> str | None:
    html = cache.get(_KEYS[payments_enabled])
    return html if isinstance(html, str) else None


def put(payments_enabled: bool, html: str) -> None:
    cache.set(_KEYS[payments_enabled], html, TIMEOUT_SECONDS)


def forget() -> None:
    """Drop the cached section for every visitor, once the current transaction commits.

    After the commit, so a page rendered meanwhile cannot store the old catalog
    again after it was dropped.
    """
    transaction.on_commit(lambda: cache.delete_many(list(_KEYS.values())))


def forget_on_change(sender: Any, **kwargs: Any) -> None:
    """``post_save`` / ``post_delete`` receiver for ``StripeProduct``."""
    forget()
