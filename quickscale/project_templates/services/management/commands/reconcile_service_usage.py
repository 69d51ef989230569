"""`manage.py reconcile_service_usage`: fail and refund calls whose end was never recorded."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from services.usage import usage_reconcile_stale


class Command(BaseCommand):
    help = (
        "Mark failed, and refund, every service call still pending after "
        "SERVICE_CALL_TIMEOUT_SECONDS (its outcome was lost, e.g. to a database outage). "
        "Run by bootstrap; safe to run any time, e.g. from cron."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = usage_reconcile_stale()
        self.stdout.write(
            f"failed and refunded {count} call{'s' if count != 1 else ''} pending for more "
            f"than {settings.SERVICE_CALL_TIMEOUT_SECONDS} s"
        )
