from django.apps import AppConfig


class LlmConfig(AppConfig):
    """LLM services: providers (official SDKs), per-token metering, the llm service type."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "llm"
