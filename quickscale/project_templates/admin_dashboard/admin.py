"""Django admin for the audit log: read-only, like the ledger."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from admin_dashboard.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Staff read the audit log here; nothing adds, changes or deletes its rows."""

    list_display = ("created_at", "actor", "action", "target_label", "reason")
    list_filter = ("action", "created_at")
    search_fields = ("actor__email", "target_user__email", "target_label", "reason", "reference")
    date_hierarchy = "created_at"
    list_select_related = ("actor", "target_user")
    readonly_fields = (
        "created_at",
        "actor",
        "action",
        "target_user",
        "target_type",
        "target_id",
        "target_label",
        "reason",
        "details",
        "reference",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
