"""Read-only admin for lots and entries: staff look here, they change credits through the ledger."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from common.admin import ReadOnlyAdmin
from credits.models import CreditHold, CreditLot, LedgerEntry, LedgerEntryLot


class LedgerEntryLotInline(admin.TabularInline):  # type: ignore[type-arg]
    model = LedgerEntryLot
    fields = ("lot", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CreditLot)
class CreditLotAdmin(ReadOnlyAdmin):
    list_display = (
        "reference",
        "user",
        "source",
        "amount",
        "remaining",
        "held",
        "expires_at",
        "created_at",
    )
    list_filter = ("source",)
    search_fields = ("reference", "user__email", "price_id")
    date_hierarchy = "created_at"
    list_select_related = ("user",)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "kind", "amount", "shortfall", "key", "actor")
    list_filter = ("kind",)
    search_fields = ("key", "user__email", "description", "reason")
    date_hierarchy = "created_at"
    list_select_related = ("user", "actor")
    inlines = (LedgerEntryLotInline,)


@admin.register(CreditHold)
class CreditHoldAdmin(ReadOnlyAdmin):
    """Credits reserved for calls still running (open) and how each hold closed."""

    list_display = ("created_at", "user", "key", "amount", "state", "expires_at", "closed_at")
    list_filter = ("state",)
    search_fields = ("key", "user__email", "description")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
