from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stripe_manager.gateway import GatewayError, get_gateway, uses_simulator
from stripe_manager.models import UserSubscription
from stripe_manager.simulator.gateway import SimulatorGateway


class Command(BaseCommand):
    help = "Simulator only: advance a user's plan to its next billing period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="the subscriber's email")

    def handle(self, *args: Any, **options: Any) -> None:
        if not uses_simulator():
            raise CommandError("The simulator is not selected (STRIPE_ENABLED is on).")
        subscription = UserSubscription.objects.filter(
            user__email__iexact=options["email"], status__in=UserSubscription.LIVE
        ).first()
        if subscription is None:
            raise CommandError(f"{options['email']} has no active plan.")
        gateway = get_gateway()
        assert isinstance(gateway, SimulatorGateway)
        try:
            outcome = gateway.renew(subscription.stripe_subscription_id)
        except GatewayError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"subscription {outcome}")
