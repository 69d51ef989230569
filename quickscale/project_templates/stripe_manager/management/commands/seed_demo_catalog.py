from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from stripe_manager.catalog import catalog_sync
from stripe_manager.gateway import uses_simulator
from stripe_manager.simulator.catalog import seed_demo_catalog


class Command(BaseCommand):
    help = "Seed the Stripe simulator's demo catalog (only when the simulator is selected)."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.IS_PRODUCTION or not uses_simulator():
            self.stdout.write("skipped (simulator not selected)")
            return
        created = seed_demo_catalog()
        upserted, _ = catalog_sync()
        self.stdout.write(f"{created} demo prices created, {upserted} in the catalog")
