from django.apps import AppConfig


class UsersConfig(AppConfig):
    """Email-only accounts: CustomUser, Profile, allauth adapter, lockout, security log."""

    name = "users"
    verbose_name = "Users"

    def ready(self) -> None:
        from users import receivers  # noqa: F401  (connects the security-log receivers)
