"""Admin pieces shared by the apps."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.mail_tasks import email_retry
from common.models import QueuedEmail


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """No add, change or delete: for history that only the app's own code writes."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(QueuedEmail)
class QueuedEmailAdmin(ReadOnlyAdmin):
    """Every email the worker sent, is sending or gave up, with its last error."""

    list_display = ("key", "state", "recipients", "subject", "attempts", "created_at", "sent_at")
    list_filter = ("state",)
    search_fields = ("key", "recipients", "subject")
    ordering = ("-created_at",)
    actions = ("send_again",)
    fields = (
        "key",
        "state",
        "recipients",
        "subject",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "sent_at",
        "builder",
    )

    @admin.action(description="Send the selected given-up emails again")
    def send_again(self, request: HttpRequest, queryset: QuerySet[QueuedEmail]) -> None:
        count = email_retry(list(queryset.values_list("pk", flat=True)))
        messages.info(request, f"{count} email{'s' if count != 1 else ''} queued again.")
