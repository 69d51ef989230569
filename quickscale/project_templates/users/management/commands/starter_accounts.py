"""`manage.py starter_accounts`: create them in development, refuse production while usable."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from users.startup import create_starter_accounts, refuse_starter_accounts


class Command(BaseCommand):
    help = (
        "Create the starter accounts (development only; run by bootstrap). In production, "
        "fail while one of them exists with a usable password."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.IS_PRODUCTION:
            try:
                refuse_starter_accounts()
            except ImproperlyConfigured as error:
                raise CommandError(str(error)) from error
            self.stdout.write("skipped (production)")
            return
        created = create_starter_accounts()
        self.stdout.write(f"created {', '.join(created)}" if created else "already exist")
