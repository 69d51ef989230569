"""Django admin for services: configuration with bulk on/off, usage and jobs read-only.

Changes go through ``services.configuration.service_update`` (as the admin
dashboard's do) and ``services.jobs.cancel_job``; usage rows and jobs are
history and stay read-only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ReadOnlyAdmin
from services.configuration import service_update
from services.exceptions import JobError
from services.jobs import cancel_job
from services.models import Job, Service, ServiceUsage


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "credit_cost", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name", "description")
    actions = ("switch_on", "switch_off")

    def _switch(self, request: HttpRequest, queryset: QuerySet[Service], active: bool) -> None:
        names = list(queryset.values_list("name", flat=True))
        for name in names:
            service_update(name, is_active=active)
        state = "on" if active else "off"
        self.message_user(request, f"Switched {state}: {', '.join(names)}.", messages.SUCCESS)

    @admin.action(description="Switch the selected services on")
    def switch_on(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        self._switch(request, queryset, True)

    @admin.action(description="Switch the selected services off")
    def switch_off(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        self._switch(request, queryset, False)


@admin.register(ServiceUsage)
class ServiceUsageAdmin(ReadOnlyAdmin):
    """Each call of a service: what it cost and how it ended. Read-only history."""

    list_display = (
        "created_at",
        "service",
        "user",
        "origin",
        "status",
        "credits_charged",
        "duration_ms",
    )
    list_filter = ("status", "origin", "service")
    search_fields = ("user__email", "service__name", "error")
    # The start of what the user sent is theirs: their own usage page shows it, staff do not.
    exclude = ("input_summary",)
    date_hierarchy = "created_at"
    list_select_related = ("service", "user")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    """Background jobs: state, progress, attempts and money. Staff can cancel unfinished ones.

    The result file is named, not linked: it is served only to its owner.
    """

    list_display = (
        "created_at",
        "service",
        "owner",
        "origin",
        "state",
        "progress",
        "attempts",
        "credits_held",
        "credits_charged",
    )
    list_filter = ("state", "origin", "service")
    # A paid job's hold key holds its id: job:<id>.
    search_fields = ("owner__email", "service__name", "hold_key")
    date_hierarchy = "created_at"
    list_select_related = ("service", "owner")
    actions = ("cancel",)
    fields = (
        "id",
        "owner",
        "service",
        "origin",
        "state",
        "progress",
        "progress_message",
        "attempts",
        "lease_expires_at",
        "cancel_requested",
        "hold_key",
        "credits_held",
        "credits_charged",
        "units_billable",
        "units_processed",
        "inputs",
        "result",
        "result_file_name",
        "error",
        "expires_at",
        "created_at",
        "started_at",
        "finished_at",
    )

    @admin.display(description="Result file")
    def result_file_name(self, job: Job) -> str:
        return job.result_file.name or "-"

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        # The owner's own cancel: a queued job ends now, a running one at its next report.
        cancelled = 0
        for job in queryset.select_related("owner"):
            try:
                cancel_job(job.owner, job.pk)
            except JobError:
                continue  # finished meanwhile
            cancelled += 1
        self.message_user(request, f"Cancelled or asked to cancel {cancelled} job(s).")
