"""Django admin for the audit log: read-only, like the ledger."""

from __future__ import annotations

from django.contrib import admin

from admin_dashboard.models import AuditLog, RefundRequest
from common.admin import ReadOnlyAdmin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
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


@admin.register(RefundRequest)
class RefundRequestAdmin(ReadOnlyAdmin):
    """Who asked for which refund; written by the dashboard only."""

    list_display = (
        "created_at",
        "payment",
        "sequence",
        "requested_by",
        "amount",
        "refund",
        "error",
    )
    list_filter = ("created_at",)
    search_fields = ("payment__receipt_number", "requested_by__email", "reason")
    list_select_related = ("payment", "requested_by", "refund")
