"""`manage.py configure_service`: list, create or change a service's cost, text and state.

configure_service my_service --credit-cost 1.5 --active      create
configure_service my_service --update --credit-cost 2.0      change
configure_service --list                                     list, with class or not
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from services.configuration import ServiceConfigError, service_create, service_update
from services.registry import registered_services
from services.selectors import all_services


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise CommandError(f"--credit-cost {value!r} is not a number, e.g. 1.5.") from None


class Command(BaseCommand):
    help = "Create (or with --update change) a service's cost, description and state; --list."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="The service's registered name.")
        parser.add_argument("--list", action="store_true", help="List every service.")
        parser.add_argument("--update", action="store_true", help="Change an existing service.")
        parser.add_argument("--credit-cost", help="Credits per call, e.g. 1.5 (0 is free).")
        parser.add_argument("--description", help="Text shown on the services page.")
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--active", action="store_true", help="Switch the service on.")
        state.add_argument("--inactive", action="store_true", help="Switch the service off.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            self._list()
            return
        name = options["name"]
        if not name:
            raise CommandError("Name a service, or use --list to see them.")
        cost = None if options["credit_cost"] is None else _decimal(options["credit_cost"])
        active = True if options["active"] else False if options["inactive"] else None
        try:
            if options["update"]:
                service = service_update(
                    name, credit_cost=cost, description=options["description"], is_active=active
                )
                verb = "Updated"
            else:
                service = service_create(
                    name,
                    credit_cost=Decimal("0.00") if cost is None else cost,
                    description=options["description"] or "",
                    is_active=active is not False,
                )
                verb = "Created"
        except ServiceConfigError as error:
            raise CommandError(str(error)) from None
        state = "active" if service.is_active else "inactive"
        self.stdout.write(f"{verb} {service.name}: {service.credit_cost} credits, {state}")
        if service.name not in registered_services():
            self.stdout.write(
                self.style.WARNING(
                    f"No service class is registered as {service.name!r}; calls will fail "
                    "until services/custom/ has one."
                )
            )

    def _list(self) -> None:
        classes = registered_services()
        services = list(all_services())
        if not services:
            self.stdout.write("No services. Run `manage.py create_default_services`.")
        width = max((len(service.name) for service in services), default=4)
        for service in services:
            state = "active" if service.is_active else "inactive"
            code = "class ok" if service.name in classes else "NO CLASS"
            self.stdout.write(
                f"{service.name:<{width}}  {service.credit_cost:>8} credits  {state:<8}  {code}"
            )
        for name in sorted(set(classes) - {service.name for service in services}):
            self.stdout.write(f"{name:<{width}}  (class without a row: run bootstrap)")
