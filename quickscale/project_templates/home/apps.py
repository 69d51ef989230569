from django.apps import AppConfig


class HomeConfig(AppConfig):
    """The signed-in user's home: balance, plan, usage chart, recent calls, next steps."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "home"
