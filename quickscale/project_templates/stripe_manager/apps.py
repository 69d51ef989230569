from django.apps import AppConfig


class StripeManagerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "stripe_manager"
    verbose_name = "Billing"

    def ready(self) -> None:
        """Refuse to start with the simulator in production; wire the pricing cache and
        auto top-up."""
        from django.db.models.signals import post_delete, post_save

        from stripe_manager import pricing_cache
        from stripe_manager.gateway import check_gateway_setting
        from stripe_manager.models import StripeProduct

        check_gateway_setting()
        # The landing page's cached pricing section follows every catalog change.
        for signal in (post_save, post_delete):
            signal.connect(
                pricing_cache.forget_on_change, sender=StripeProduct, dispatch_uid="pricing"
            )
        # Auto top-up starts after a spend that left the balance below the user's threshold.
        from credits.signals import available_lowered
        from stripe_manager.auto_top_up import on_available_lowered

        available_lowered.connect(on_available_lowered, dispatch_uid="auto_top_up")
        # The Stripe customer follows its account's email, name and deletion.
        from allauth.account.signals import email_changed

        from stripe_manager import customer_sync
        from users.signals import account_deleted, account_name_changed

        email_changed.connect(customer_sync.on_email_changed, dispatch_uid="stripe_customer")
        for change in (account_name_changed, account_deleted):
            change.connect(customer_sync.on_account_changed, dispatch_uid="stripe_customer")
