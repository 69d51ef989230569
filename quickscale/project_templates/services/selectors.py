"""Reads of services and usage; views and the API call these, never the ORM directly."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from services.models import SERVICE_NAME_PATTERN, Service, ServiceUsage
from users.models import CustomUser

USAGE_PER_PAGE = 25


def active_services() -> QuerySet[Service]:
    """Return the services users can call, by name."""
    return Service.objects.filter(is_active=True).order_by("name")


def all_services() -> QuerySet[Service]:
    """Return every configured service, active or not, by name."""
    return Service.objects.order_by("name")


def active_service(name: str) -> Service | None:
    """Return the active service called ``name``, or None (also for names that cannot exist)."""
    if not SERVICE_NAME_PATTERN.match(name):
        return None
    return Service.objects.filter(name=name, is_active=True).first()


def usages(user: CustomUser) -> QuerySet[ServiceUsage]:
    """Return ``user``'s calls, newest first, with their service."""
    return (
        ServiceUsage.objects.filter(user=user)
        .select_related("service")
        .order_by("-created_at", "-id")
    )


def usage_page(
    user: CustomUser, *, page: int | str | None = 1, per_page: int = USAGE_PER_PAGE
) -> Page[ServiceUsage]:
    """Return one page of ``user``'s calls; an out-of-range page gives the nearest one."""
    return Paginator(usages(user), per_page).get_page(page)
