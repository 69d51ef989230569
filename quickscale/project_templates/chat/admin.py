"""Django admin: conversations read-only with their messages (support looks, never edits)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from chat.models import Conversation, Message
from common.admin import ReadOnlyAdmin


class MessageInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Message
    fields = ("role", "state", "content", "input_tokens", "output_tokens", "credits_charged")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ("title", "user", "updated_at")
    search_fields = ("title", "user__email")
    list_select_related = ("user",)
    inlines = (MessageInline,)
