"""`manage.py create_default_services`: create the default services' rows (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand

from services.configuration import DEFAULT_SERVICES, ensure_service_rows


class Command(BaseCommand):
    help = "Create the default services; existing rows are left as they are."

    def handle(self, *args: Any, **options: Any) -> None:
        created = ensure_service_rows(DEFAULT_SERVICES)
        self.stdout.write(f"created {', '.join(created)}" if created else "already exist")
