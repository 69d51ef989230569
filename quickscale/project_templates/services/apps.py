from django.apps import AppConfig


class ServicesConfig(AppConfig):
    """Metered AI services: BaseService, the registry, default services, usage records."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "services"

    def ready(self) -> None:
        """Import the default services and every module in ``services/custom/``."""
        from django.core import checks

        from services.checks import check_result_templates
        from services.erasure import erase_usage_inputs
        from services.registry import discover_services
        from users.signals import account_deleted

        discover_services()
        account_deleted.connect(erase_usage_inputs, dispatch_uid="services_erase_usage_inputs")
        checks.register(check_result_templates)
