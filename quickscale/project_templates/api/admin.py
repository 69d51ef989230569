"""Django admin for API keys: read-only (keys are created and revoked by their owner).

Only a hash of each secret is stored, so nothing here could show a key again;
staff may revoke keys in bulk through ``api.services.api_key_revoke``.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from api.models import APIKey, APIKeyJob, APIKeyUsage
from api.services import api_key_revoke
from common.admin import ReadOnlyAdmin


@admin.register(APIKey)
class APIKeyAdmin(ReadOnlyAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at", "created_at")
    search_fields = ("name", "prefix", "user__email")
    list_select_related = ("user",)
    exclude = ("secret_hash",)
    actions = ("revoke",)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        revoked = 0
        with transaction.atomic():
            for key in queryset.filter(revoked_at__isnull=True).select_related("user"):
                if api_key_revoke(key.user, key_id=key.pk) is not None:
                    revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)


@admin.register(APIKeyUsage)
class APIKeyUsageAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "key", "usage")
    search_fields = ("key__prefix", "key__user__email")
    list_select_related = ("key", "usage")


@admin.register(APIKeyJob)
class APIKeyJobAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "key", "job")
    search_fields = ("key__prefix", "key__user__email")
    list_select_related = ("key", "job__service")
