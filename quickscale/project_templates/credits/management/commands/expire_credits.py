"""`manage.py expire_credits`: write expiry entries for lots past their date (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand

from credits import ledger


class Command(BaseCommand):
    help = "Expire credit lots whose expiry date has passed. Safe to run any time, e.g. from cron."

    def handle(self, *args: Any, **options: Any) -> None:
        count = ledger.expire()
        self.stdout.write(f"expired {count} lot{'s' if count != 1 else ''}")
