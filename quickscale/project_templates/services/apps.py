from django.apps import AppConfig


class ServicesConfig(AppConfig):
    """Metered AI services: BaseService, the registry, default services, usage records."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "services"

    def ready(self) -> None:
        """Import the default services and every module in ``services/custom/``."""
        from services.registry import discover_services

        discover_services()
