from django.apps import AppConfig


class ServicesConfig(AppConfig):
    """Metered AI services: BaseService, the registry, default services, usage records."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "services"

    def ready(self) -> None:
        """Import the default services and every module in ``services/custom/``."""
        from django.core import checks

        from credits.labels import register_label_resolver
        from services.checks import check_result_templates
        from services.erasure import erase_usage_inputs
        from services.presentation import ledger_label
        from services.registry import discover_services
        from users.signals import account_deleted

        discover_services()
        account_deleted.connect(erase_usage_inputs, dispatch_uid="services_erase_usage_inputs")
        checks.register(check_result_templates)
        # Credit histories show a call's entry under the service's title, not its name.
        register_label_resolver(ledger_label)
