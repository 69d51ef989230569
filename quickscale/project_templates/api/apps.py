from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP API: API keys, /api/ endpoints (django-ninja), OpenAPI docs."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
