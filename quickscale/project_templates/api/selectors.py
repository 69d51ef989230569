"""Reads of the api app."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from api.models import APIKey
from users.models import CustomUser


def api_keys(user: CustomUser) -> QuerySet[APIKey]:
    """Return ``user``'s keys, newest first, each with ``call_count`` (direct calls and jobs)."""
    # distinct: the two joins multiply each other's rows.
    return (
        APIKey.objects.filter(user=user)
        .annotate(call_count=Count("usages", distinct=True) + Count("jobs", distinct=True))
        .order_by("-created_at", "-id")
    )


def has_api_key(user: CustomUser) -> bool:
    """Whether ``user`` has a key that can still call the API."""
    return APIKey.objects.filter(user=user, revoked_at__isnull=True).exists()
