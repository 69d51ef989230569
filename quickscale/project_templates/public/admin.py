from django.contrib import admin

from public.models import ContactMessage


@admin.register(ContactMessage)
class ContactMessageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Contact messages, read-only (they are what the sender wrote)."""

    list_display = ("created_at", "subject", "name", "email")
    search_fields = ("subject", "name", "email", "message")
    readonly_fields = ("created_at", "name", "email", "subject", "message", "ip_address")

    def has_add_permission(self, request: object) -> bool:
        return False
