"""`manage.py bootstrap`: all start-up work, idempotent, in one ordered list.

Both the local runtime (`quickscale up`) and the container entrypoint run it
before the web server starts. Running it again changes nothing.

To add start-up work, write one small step function and add it to ``STEPS`` at
the right place. This module sits in ``common``, the lowest app layer, so steps
owned by higher apps (expire credits, register services) run those apps'
management commands by name with ``call_command`` instead of importing them.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, connection
from django.db.migrations.executor import MigrationExecutor

from common.accounts import ensure_user

DATABASE_ATTEMPTS = 10
DATABASE_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class BootstrapOptions:
    """What the command line asked for; steps read it instead of raw options."""

    skip_collectstatic: bool


# A step does one thing and returns a short line saying what it did.
Step = Callable[[BootstrapOptions], str]


def wait_for_database(options: BootstrapOptions) -> str:
    """Retry the connection briefly: a database started just before may not accept yet."""
    for attempt in range(1, DATABASE_ATTEMPTS + 1):
        try:
            connection.ensure_connection()
        except OperationalError as error:
            connection.close()
            if attempt == DATABASE_ATTEMPTS:
                raise CommandError(
                    f"Database unreachable after {DATABASE_ATTEMPTS} attempts ({error}). "
                    "Check DATABASE_URL or DB_* and that PostgreSQL is running."
                ) from error
            time.sleep(DATABASE_RETRY_SECONDS)
        else:
            return "reachable" if attempt == 1 else f"reachable after {attempt} attempts"
    raise AssertionError("unreachable")  # the loop always returns or raises


def migrate(options: BootstrapOptions) -> str:
    """Apply pending migrations."""
    executor = MigrationExecutor(connection)
    pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    call_command("migrate", interactive=False, verbosity=0)
    return f"applied {pending} migrations" if pending else "up to date"


def create_cache_table(options: BootstrapOptions) -> str:
    """Create the database cache table (a no-op when Redis is the cache)."""
    call_command("createcachetable", verbosity=0)
    return "ready"


def create_superuser(options: BootstrapOptions) -> str:
    """Create the superuser named by DJANGO_SUPERUSER_EMAIL/PASSWORD when both are set."""
    email, password = settings.DJANGO_SUPERUSER_EMAIL, settings.DJANGO_SUPERUSER_PASSWORD
    if not (email and password):
        return "skipped (set DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD)"
    created = ensure_user(email, password, is_admin=True)
    return f"created {email}" if created else f"{email} exists"


def create_starter_accounts(options: BootstrapOptions) -> str:
    """Create the starter accounts, or refuse production while one can sign in (users app)."""
    output = StringIO()
    call_command("starter_accounts", stdout=output)
    return output.getvalue().strip()


def reconcile_service_calls(options: BootstrapOptions) -> str:
    """Fail and refund service calls whose end was never recorded (services app).

    Before expiring credits: a refund into a lot that has expired since is then
    expired in the same start-up.
    """
    output = StringIO()
    call_command("reconcile_service_usage", stdout=output)
    return output.getvalue().strip()


def expire_credits(options: BootstrapOptions) -> str:
    """Write the expiry entries of credit lots whose date has passed (credits app)."""
    output = StringIO()
    call_command("expire_credits", stdout=output)
    return output.getvalue().strip()


def create_services(options: BootstrapOptions) -> str:
    """Create the default services, then a row for each registered class lacking one."""
    defaults, registered = StringIO(), StringIO()
    call_command("create_default_services", stdout=defaults)
    call_command("register_services", stdout=registered)
    return f"defaults {defaults.getvalue().strip()}; others {registered.getvalue().strip()}"


def seed_demo_catalog(options: BootstrapOptions) -> str:
    """Seed the Stripe simulator's demo catalog (stripe_manager; only with the simulator)."""
    output = StringIO()
    call_command("seed_demo_catalog", stdout=output)
    return output.getvalue().strip()


def collect_static(options: BootstrapOptions) -> str:
    """Copy static files to STATIC_ROOT (the container image does this at build time)."""
    if options.skip_collectstatic:
        return "skipped (--skip-collectstatic)"
    call_command("collectstatic", interactive=False, verbosity=0)
    return f"collected into {settings.STATIC_ROOT}"


STEPS: list[tuple[str, Step]] = [
    ("database", wait_for_database),
    ("migrate", migrate),
    ("cache table", create_cache_table),
    ("superuser", create_superuser),
    ("starter accounts", create_starter_accounts),
    ("unfinished service calls", reconcile_service_calls),
    ("expire credits", expire_credits),
    ("services", create_services),
    ("demo catalog", seed_demo_catalog),
    ("static files", collect_static),
]


class Command(BaseCommand):
    help = "Prepare the project to serve: database, migrations, accounts, static files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--skip-collectstatic",
            action="store_true",
            help="Do not run collectstatic (the container image already collected).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bootstrap_options = BootstrapOptions(skip_collectstatic=options["skip_collectstatic"])
        for name, step in STEPS:
            started = time.monotonic()
            result = step(bootstrap_options)
            self.stdout.write(f"bootstrap: {name}: {result} ({time.monotonic() - started:.1f} s)")
