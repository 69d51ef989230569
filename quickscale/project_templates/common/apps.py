from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Shared helpers at the bottom of the app layers: mail, health, bootstrap, the scheduler."""

    name = "common"
    verbose_name = "Common"
