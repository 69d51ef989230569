"""Reads of services and usage; views and the API call these, never the ORM directly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet, Sum

from credits.models import ZERO
from services.models import Job, Service, ServiceUsage
from users.models import CustomUser

USAGE_PER_PAGE = 25


def active_services() -> QuerySet[Service]:
    """Return the services users can call, by name."""
    return Service.objects.filter(is_active=True).order_by("name")


def all_services() -> QuerySet[Service]:
    """Return every configured service, active or not, by name."""
    return Service.objects.order_by("name")


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


def latest_usages(user: CustomUser, *, limit: int = 10) -> list[ServiceUsage]:
    """Return ``user``'s latest calls, newest first."""
    return list(usages(user)[:limit])


def latest_calls(service: Service, *, limit: int = 20) -> list[ServiceUsage]:
    """Return the latest calls of ``service``, by anyone, newest first."""
    return list(
        ServiceUsage.objects.filter(service=service).select_related("user").order_by("-id")[:limit]
    )


def jobs(user: CustomUser) -> QuerySet[Job]:
    """Return ``user``'s jobs, newest first, with their service; without inputs and results.

    A list shows state and progress; a batch's inputs and result can be large,
    so they are read only for the one job asked for (``user_job``).
    """
    return (
        Job.objects.filter(owner=user)
        .select_related("service")
        .defer("inputs", "result")
        .order_by("-created_at", "-id")
    )


def user_job(user: CustomUser, job_id: uuid.UUID | str) -> Job | None:
    """Return ``user``'s job ``job_id`` with its service; None for another user's or no job."""
    try:
        pk = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
    except ValueError:
        return None
    return Job.objects.filter(owner=user, pk=pk).select_related("service").first()


@dataclass(frozen=True)
class ServiceStats:
    calls: int
    succeeded: int
    failed: int
    credits_consumed: Decimal
    unique_users: int

    @property
    def failure_rate(self) -> float:
        """Share of calls that failed (failed, refunded or pending), 0 to 100."""
        return round(100 * self.failed / self.calls, 1) if self.calls else 0.0


def service_stats(service: Service, *, start: datetime, end: datetime) -> ServiceStats:
    """Return calls, credits consumed, unique users and failures of ``service`` in [start, end).

    A job cancelled while it ran is neither a success nor a failure, and what
    it was charged for the part it processed counts as consumed.
    """
    ok = ServiceUsage.Status.SUCCEEDED
    cancelled = ServiceUsage.Status.CANCELLED
    row = ServiceUsage.objects.filter(
        service=service, created_at__gte=start, created_at__lt=end
    ).aggregate(
        calls=Count("id"),
        succeeded=Count("id", filter=Q(status=ok)),
        cancelled=Count("id", filter=Q(status=cancelled)),
        credits=Sum("credits_charged", filter=Q(status__in=[ok, cancelled])),
        users=Count("user", distinct=True),
    )
    return ServiceStats(
        calls=row["calls"],
        succeeded=row["succeeded"],
        failed=row["calls"] - row["succeeded"] - row["cancelled"],
        credits_consumed=row["credits"] or ZERO,
        unique_users=row["users"],
    )
