"""``manage.py stripe_check``: the go-live check of the configured Stripe account (read-only)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from stripe_manager.golive import CheckStopped, check


class Command(BaseCommand):
    help = (
        "Check the Stripe account against this project: key mode, webhook endpoint and its "
        "events, signing secret, credit metadata, Billing Portal. Reads only; exits 1 on "
        "any finding."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.STRIPE_ENABLED:
            raise CommandError(
                "STRIPE_ENABLED is off, so there is no Stripe account to check. "
                "Fix: set STRIPE_ENABLED=True with your keys (see docs/going-live.md)."
            )
        try:
            results = check()
        except CheckStopped as error:
            raise CommandError(str(error)) from error
        for result in results:
            self.stdout.write(result.line())
        failures = sum(not result.ok for result in results)
        if failures:
            raise CommandError(f"{failures} finding(s): fix them and run stripe_check again.")
        self.stdout.write("Stripe is ready: every check passed.")
