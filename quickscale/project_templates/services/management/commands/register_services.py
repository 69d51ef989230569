"""`manage.py register_services`: a ``Service`` row for every registered class lacking one."""

from typing import Any

from django.core.management.base import BaseCommand

from services.configuration import ensure_service_rows


class Command(BaseCommand):
    help = (
        "Create the missing Service rows of registered service classes from their declared "
        "cost and description (run by bootstrap); existing rows are left as they are."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        created = ensure_service_rows()
        self.stdout.write(f"created {', '.join(created)}" if created else "none missing")
