from typing import Any

from django.core.management.base import BaseCommand, CommandError

from stripe_manager.catalog import catalog_sync
from stripe_manager.gateway import CatalogError, GatewayError


class Command(BaseCommand):
    help = "Pull the active Stripe prices into the catalog (Stripe is the source of truth)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            upserted, deactivated = catalog_sync()
        except CatalogError as error:
            raise CommandError(str(error)) from error
        except GatewayError as error:
            raise CommandError(f"{error} Check STRIPE_SECRET_KEY and try again.") from error
        self.stdout.write(f"{upserted} prices synced, {deactivated} deactivated")
