"""Django admin of LLM service configurations: provider, model, limits and per-token prices.

Saving validates the row (``LLMServiceConfig.clean``): an invalid JSON Schema or
prompt template is refused with the reason, and nothing changes.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from llm.models import LLMServiceConfig


@admin.register(LLMServiceConfig)
class LLMServiceConfigAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "service",
        "provider",
        "model",
        "input_price_per_1k",
        "output_price_per_1k",
        "max_tokens",
        "max_tokens_cap",
        "updated_at",
    )
    list_filter = ("provider",)
    search_fields = ("service__name", "model")
    list_select_related = ("service",)
    fieldsets = (
        (None, {"fields": ("service", "provider", "model", "temperature")}),
        (
            "Limits",
            {"fields": ("max_tokens", "max_tokens_cap", "context_window", "max_input_chars")},
        ),
        ("Credits per 1,000 tokens", {"fields": ("input_price_per_1k", "output_price_per_1k")}),
        ("Prompt", {"fields": ("system_prompt", "prompt_template", "json_schema")}),
    )

    def get_readonly_fields(
        self, request: HttpRequest, obj: LLMServiceConfig | None = None
    ) -> tuple[str, ...]:
        """The service a configuration belongs to never changes."""
        return ("service",) if obj is not None else ()
