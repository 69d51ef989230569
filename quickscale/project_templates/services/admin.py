"""Django admin for services: configuration with bulk on/off, usage read-only.

Changes go through ``services.configuration.service_update`` (as the admin
dashboard's do); usage rows are history and stay read-only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin import ReadOnlyAdmin
from services.configuration import service_update
from services.models import Service, ServiceUsage


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
    date_hierarchy = "created_at"
    list_select_related = ("service", "user")
