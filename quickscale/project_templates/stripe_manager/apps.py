from django.apps import AppConfig


class StripeManagerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "stripe_manager"
    verbose_name = "Billing"

    def ready(self) -> None:
        """Refuse to start a production server with the offline simulator selected."""
        from stripe_manager.gateway import check_gateway_setting

        check_gateway_setting()
