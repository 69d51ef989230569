"""``BaseService``: the one path every metered call takes.

A service is a subclass that declares its defaults and implements
``execute_service``; ``@register_service("name")`` (``services/decorators.py``)
registers it. ``run`` is the framework's part and the same for every service:

1. refuse the call when the service has no ``Service`` row or is switched off;
2. ``validate_input`` (raises ``ServiceInputError``; nothing is charged);
3. charge ``credit_cost`` through ``credits.ledger.consume`` with a fresh
   reference, unless the cost is 0 or ``CREDIT_SYSTEM_ENABLED`` is off
   (``InsufficientCredits`` propagates and nothing is recorded);
4. ``execute_service``; on any exception the charge is reversed, a failed
   ``ServiceUsage`` is recorded and ``ServiceFailed`` is raised, so a failed
   call never costs credits;
5. record a succeeded ``ServiceUsage`` and return the result with it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.core.files import File

from credits import ledger
from credits.models import LedgerEntry
from services.exceptions import ServiceFailed, ServiceUnavailable
from services.forms import TextInputForm
from services.models import Service, ServiceUsage
from users.models import CustomUser

logger = logging.getLogger(__name__)

SUMMARY_MAX_LENGTH = 200


@dataclass(frozen=True)
class ServiceResult:
    """What ``run`` returns: the service's output and the usage row it recorded."""

    result: dict[str, Any]
    usage: ServiceUsage


class BaseService:
    """Base class of every service; subclasses implement ``execute_service``.

    Class attributes a subclass declares:
      ``name``: set by ``@register_service``;
      ``default_credit_cost`` and ``description``: used when ``bootstrap``
      creates the service's ``Service`` row (change them later with
      ``manage.py configure_service``);
      ``form_class``: the Django form of the service's web page.
    """

    name: ClassVar[str] = ""
    default_credit_cost: ClassVar[Decimal] = Decimal("0.00")
    description: ClassVar[str] = ""
    form_class: ClassVar[type[forms.Form]] = TextInputForm

    # --------------------------------------------------------------- subclass hooks

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        """Return the cleaned inputs, or raise ``ServiceInputError`` (nothing is charged)."""
        return inputs

    def execute_service(self, user: CustomUser, **kwargs: Any) -> dict[str, Any]:
        """Do the work on cleaned inputs and return a JSON-serialisable dict."""
        raise NotImplementedError(
            f"{type(self).__name__} must provide an execute_service() method."
        )

    def summarize_input(self, cleaned: dict[str, Any]) -> str:
        """Describe the input in a few words for the usage history (never the content)."""
        parts = []
        for key, value in cleaned.items():
            if isinstance(value, str):
                parts.append(f"{key}: {len(value)} chars")
            elif isinstance(value, File):
                parts.append(f"{key}: {value.name or 'file'} ({value.size} bytes)")
            elif isinstance(value, bytes):
                parts.append(f"{key}: {len(value)} bytes")
            else:
                parts.append(f"{key}: {type(value).__name__}")
        return ", ".join(parts)[:SUMMARY_MAX_LENGTH]

    # --------------------------------------------------------------- framework

    def configuration(self) -> Service:
        """Return this service's active ``Service`` row, or raise ``ServiceUnavailable``."""
        service = Service.objects.filter(name=self.name, is_active=True).first()
        if service is None:
            raise ServiceUnavailable(self.name)
        return service

    def run(self, user: CustomUser, *, origin: str = "web", **inputs: Any) -> ServiceResult:
        """Validate, charge, execute and record one call (see the module docstring)."""
        service = self.configuration()
        cleaned = self.validate_input(**inputs)
        summary = self.summarize_input(cleaned)
        cost = service.credit_cost
        reference = ""
        entry: LedgerEntry | None = None
        if cost > 0 and settings.CREDIT_SYSTEM_ENABLED:
            reference = f"service:{service.name}:{uuid.uuid4().hex}"
            entry = ledger.consume(user, cost, reference=reference, description=service.name)
        started = time.perf_counter()
        try:
            result = self.execute_service(user, **cleaned)
        except Exception as error:
            if entry is not None:
                ledger.reverse(reference, reason=f"Service {service.name} failed")
            usage = self._record(
                user,
                service,
                origin,
                entry,
                ServiceUsage.Status.FAILED,
                started,
                summary,
                error=f"{type(error).__name__}: {error}",
            )
            logger.warning(
                "service failed",
                extra={"service": service.name, "usage": usage.pk, "error": repr(error)},
            )
            raise ServiceFailed(service.name, usage) from error
        usage = self._record(
            user, service, origin, entry, ServiceUsage.Status.SUCCEEDED, started, summary
        )
        return ServiceResult(result=result, usage=usage)

    def _record(
        self,
        user: CustomUser,
        service: Service,
        origin: str,
        entry: LedgerEntry | None,
        status: ServiceUsage.Status,
        started: float,
        summary: str,
        *,
        error: str = "",
    ) -> ServiceUsage:
        charged = service.credit_cost if entry is not None else Decimal("0.00")
        return ServiceUsage.objects.create(
            user=user,
            service=service,
            origin=origin,
            credits_charged=charged if status == ServiceUsage.Status.SUCCEEDED else Decimal("0"),
            ledger_entry=entry,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000),
            input_summary=summary,
            error=error[:300],
        )
