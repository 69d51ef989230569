from django.apps import AppConfig


class UsersConfig(AppConfig):
    """Email-only accounts: CustomUser and the allauth adapter."""

    name = "users"
    verbose_name = "Users"
