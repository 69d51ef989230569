"""Writes of ``Service`` rows: create, update, and create the missing ones from the classes."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import DatabaseError, IntegrityError, transaction

from services.models import Service
from services.registry import registered_services

logger = logging.getLogger(__name__)

DEFAULT_SERVICES = (
    "text_sentiment_analysis",
    "image_metadata_extractor",
    "demo_free_service",
    "text_summarizer",
    "batch_sentiment_analysis",
)


class ServiceConfigError(ValueError):
    """Raised when a configuration change is refused (the message says why)."""


def _cost(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise ServiceConfigError(
            f"Credit cost {value} is not valid: use 0 or a positive amount with 2 decimals."
        )
    if value >= Decimal("100000000"):
        raise ServiceConfigError(f"Credit cost {value} is too large.")
    return value.quantize(Decimal("0.01"))


def service_create(
    name: str, *, credit_cost: Decimal, description: str = "", is_active: bool = True
) -> Service:
    """Create the ``Service`` row ``name``; refuse an existing one."""
    try:
        with transaction.atomic():
            return Service.objects.create(
                name=name,
                credit_cost=_cost(credit_cost),
                description=description,
                is_active=is_active,
            )
    except IntegrityError:
        raise ServiceConfigError(
            f"Service {name!r} already exists. Change it with --update."
        ) from None


@transaction.atomic
def service_update(
    name: str,
    *,
    credit_cost: Decimal | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> Service:
    """Change the given fields of the ``Service`` row ``name``; refuse a missing one."""
    service = Service.objects.select_for_update().filter(name=name).first()
    if service is None:
        raise ServiceConfigError(f"Service {name!r} does not exist. Create it without --update.")
    if credit_cost is not None:
        service.credit_cost = _cost(credit_cost)
    if description is not None:
        service.description = description
    if is_active is not None:
        service.is_active = is_active
    service.save()
    return service


def ensure_service_rows(names: tuple[str, ...] | None = None) -> list[str]:
    """Create the missing rows of registered classes from their declared defaults.

    Existing rows are never changed (their cost and state belong to the
    operator). ``names`` limits the work to those classes. Returns the names created.
    """
    created = []
    for name, cls in registered_services().items():
        if names is not None and name not in names:
            continue
        _, was_created = Service.objects.get_or_create(
            name=name,
            defaults={
                "credit_cost": cls.default_credit_cost,
                "description": cls.description,
                "is_active": True,
            },
        )
        if was_created:
            created.append(name)
    return created


def ensure_service_rows_at_start_up() -> None:
    """Create the rows of services added since ``bootstrap`` ran; the web server calls it.

    Each web server process runs it once it has loaded, so a service module
    dropped into ``services/custom/`` is live as soon as a server (or a reloaded
    worker) starts with it, without running ``bootstrap`` again. A database that
    does not answer yet is logged and the server starts anyway: its health check
    reports the outage, and the next start or ``bootstrap`` creates the rows.
    """
    try:
        created = ensure_service_rows()
    except DatabaseError as error:
        logger.warning("service rows not checked at start-up", extra={"error": str(error)})
        return
    if created:
        logger.info("service rows created", extra={"services": created})
