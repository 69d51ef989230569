from django.apps import AppConfig


class CreditsConfig(AppConfig):
    """The credit ledger: lots, entries, balance pages and credit emails."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "credits"

    def ready(self) -> None:
        """Connect the sign-up grant and register the settings check."""
        from django.conf import settings
        from django.core import checks
        from django.db.models.signals import post_save

        from credits import receivers

        post_save.connect(
            receivers.grant_signup_credits,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="credits.grant_signup_credits",
        )
        checks.register(receivers.check_credit_settings)
