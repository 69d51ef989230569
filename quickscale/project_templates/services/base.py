"""``BaseService``: the one path every metered call takes.

A service is a subclass that declares its defaults and implements
``execute_service``; ``@register_service("name")`` (``services/registry.py``)
registers it. ``run`` is the framework's part and the same for every service:

1. refuse the call when the service has no ``Service`` row or is switched off;
2. ``validate_input`` (raises ``ServiceInputError``; nothing is charged);
3. in one transaction, charge ``credit_cost`` through ``credits.ledger.consume``
   (unless the cost is 0 or ``CREDIT_SYSTEM_ENABLED`` is off) and write a
   pending ``ServiceUsage``, plus what the caller's ``on_usage_created`` hook
   writes (``InsufficientCredits`` propagates and nothing is written);
4. ``execute_service``, outside any transaction; on any exception the usage is
   marked failed and the charge reversed in one transaction, and
   ``ServiceFailed`` is raised, so a failed call never costs credits;
5. mark the usage succeeded, then return the result with it.

If the database is unreachable at step 4 or 5, its error propagates (the web
and the API answer 503) and the usage stays pending until
``reconcile_service_usage`` fails it and refunds the charge
(``services/usage.py``): a caller that saw an error is never charged. Call
``run`` outside a transaction, or the lot locks of step 3 last for the whole call.

Background jobs (``services/jobs.py``). Any service whose cleaned inputs are
JSON can also run as a job: ``enqueue_job`` holds its cost and a worker calls
``execute_job``, whose default runs ``execute_service`` once. A service that
sets ``long_running = True`` runs *only* as a job (``run`` refuses it with
``ServiceRunsAsJob``): it prices its input in units (``billable_units``; the
hold is ``credit_cost`` x units), implements ``execute_job``, reports progress
through the job context (which is also how it learns it was cancelled) and
counts the units it processed (``job.charge``), which is what it is charged.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.conf import settings
from django.core.files import File

from services.exceptions import ServiceFailed, ServiceRunsAsJob, ServiceUnavailable
from services.forms import TextInputForm
from services.models import Service, ServiceUsage
from services.usage import UsageHook, usage_fail, usage_start, usage_succeed
from users.models import CustomUser

if TYPE_CHECKING:
    from services.jobs import JobContext

logger = logging.getLogger(__name__)

SUMMARY_MAX_LENGTH = 200
# The usage history shows the start of what was sent: enough to recognise a call,
# short enough that a row stays one line.
SUMMARY_SHOWN_CHARS = 80


@dataclass(frozen=True)
class ServiceResult:
    """What ``run`` returns: the service's output and the usage row it recorded."""

    result: dict[str, Any]
    usage: ServiceUsage


def reserved_input_names() -> frozenset[str]:
    """Names an input field cannot have: ``run`` and ``execute_job`` take them as their own."""
    names: set[str] = set()
    for method in (BaseService.run, BaseService.execute_job):
        parameters = inspect.signature(method).parameters.values()
        names |= {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD}
    return frozenset(names)


class BaseService:
    """Base class of every service; subclasses implement ``execute_service``.

    Class attributes a subclass declares:
      ``name``: set by ``@register_service``;
      ``display_name`` and ``icon``: how pages title the service (derived from
      ``name``, and a gear, when left empty); ``icon`` names a drawing of
      ``services/icons.py`` (an emoji works too, where the reader has the font);
      ``result_template``: the template that shows a result as UI (its
      ``result`` is the service's dict; the raw JSON is always one click away);
      ``example_input``: the JSON inputs of the page's "Use it from code"
      snippets (None: made up from ``form_class``'s fields);
      ``default_credit_cost`` and ``description``: used when ``bootstrap``
      creates the service's ``Service`` row (change them later with
      ``manage.py configure_service``);
      ``form_class``: the Django form of the service's web page;
      ``long_running``: True for a service that runs only as a background job
      (see the module docstring);
      ``max_run_seconds``: the longest one run of it as a job may take (None:
      ``SERVICE_CALL_TIMEOUT_SECONDS``); its credit hold lasts that long past
      the longest queue wait, and a run past it is stopped and not charged.
    """

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    icon: ClassVar[str] = ""
    result_template: ClassVar[str] = "services/results/fields.html"
    example_input: ClassVar[dict[str, Any] | None] = None
    default_credit_cost: ClassVar[Decimal] = Decimal("0.00")
    description: ClassVar[str] = ""
    form_class: ClassVar[type[forms.Form]] = TextInputForm
    long_running: ClassVar[bool] = False
    max_run_seconds: ClassVar[int | None] = None

    # The Service row read by ``configuration`` for the next ``run``.
    _configuration: Service | None = None

    # --------------------------------------------------------------- subclass hooks

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        """Return the cleaned inputs, or raise ``ServiceInputError`` (nothing is charged)."""
        return inputs

    def execute_service(self, user: CustomUser, **kwargs: Any) -> dict[str, Any]:
        """Do the work on cleaned inputs and return a JSON-serialisable dict."""
        raise NotImplementedError(
            f"{type(self).__name__} must provide an execute_service() method."
        )

    def billable_units(self, cleaned: dict[str, Any]) -> int:
        """Return how many units of work ``cleaned`` is; a job holds ``credit_cost`` x units.

        One by default (a call is one unit). A long-running service counts what
        it charges for (texts, pages...); the job is then charged for the units
        it reports processed (``JobContext.charge``), at most this many.
        """
        return 1

    def execute_job(self, job: JobContext, **kwargs: Any) -> dict[str, Any]:
        """Do the work of one background job on cleaned inputs; return a JSON-serialisable dict.

        The default runs ``execute_service`` once, for a normal service started
        in the background. A long-running service overrides it: it calls
        ``job.progress(percent, message)`` often (at least every
        ``JOB_LEASE_SECONDS``: each report renews the worker's lease, and raises
        ``JobCancelled`` once the owner cancelled), ``job.charge(units)`` for the
        units it processed, ``job.keep_partial_result(...)`` for what a cancelled
        job keeps, and ``job.attach_file(name, content)`` for a downloadable result.
        """
        return self.execute_service(job.user, **kwargs)

    def unit_price(self, service: Service) -> Decimal:
        """The price of one billable unit of a job: the service's ``credit_cost`` by default.

        A service priced otherwise (an LLM service charges per token) counts its
        units in hundredths of a credit and returns 0.01.
        """
        return service.credit_cost

    def pricing(self) -> str:
        """How the service is priced, when not by ``credit_cost`` per call; "" for that."""
        return ""

    def setup_problem(self) -> str:
        """What the operator must set before this service can run; "" when nothing.

        The service page shows it instead of running the service (which would
        raise ``ServiceNotConfigured``).
        """
        return ""

    def run_time_limit(self) -> int:
        """The longest one run of this service as a job may take, in seconds."""
        if self.max_run_seconds is not None:
            return self.max_run_seconds
        return int(settings.SERVICE_CALL_TIMEOUT_SECONDS)

    @classmethod
    def title(cls) -> str:
        """The name pages show: ``display_name``, or ``name`` written as words."""
        return cls.display_name or service_title(cls.name)

    @classmethod
    def symbol(cls) -> str:
        """The icon pages show beside the title."""
        return cls.icon or DEFAULT_ICON

    def summarize_input(self, cleaned: dict[str, Any]) -> str:
        """The start of the input, for the user's own usage history.

        Texts and numbers as sent (white space collapsed), files by name and
        size; cut at ``SUMMARY_SHOWN_CHARS`` with an ellipsis. A service whose
        input should not be kept even this far overrides it.
        """
        parts = []
        for key, value in cleaned.items():
            if isinstance(value, str):
                parts.append(f"{key}: {' '.join(value.split())}")
            elif isinstance(value, File):
                parts.append(f"{key}: {value.name or 'file'} ({value.size} bytes)")
            elif isinstance(value, bytes):
                parts.append(f"{key}: {len(value)} bytes")
            elif isinstance(value, bool | int | float | Decimal):
                parts.append(f"{key}: {value}")
            else:
                parts.append(f"{key}: {type(value).__name__}")
        return truncate(", ".join(parts), SUMMARY_SHOWN_CHARS)

    # --------------------------------------------------------------- framework

    def configuration(self) -> Service:
        """Return this service's active ``Service`` row, or raise ``ServiceUnavailable``.

        The row is read once for the next call: a view that checks it before
        ``run`` (to answer 404 before reading the input) and ``run`` share one
        query, and ``run`` lets it go, so a later call on this instance reads it again.
        """
        if self._configuration is None:
            service = Service.objects.filter(name=self.name, is_active=True).first()
            if service is None:
                raise ServiceUnavailable(self.name)
            self._configuration = service
        return self._configuration

    def run(
        self,
        user: CustomUser,
        *,
        origin: str = "web",
        on_usage_created: UsageHook | None = None,
        **inputs: Any,
    ) -> ServiceResult:
        """Validate, charge, execute and record one call (see the module docstring).

        ``on_usage_created`` is called with the pending usage inside the charging
        transaction, so whatever it writes commits together with the charge.
        A long-running service is refused (``ServiceRunsAsJob``) before anything
        is read: it runs only as a job (``services.jobs.enqueue_job``).
        """
        if self.long_running:
            raise ServiceRunsAsJob(self.name)
        service = self.configuration()
        self._configuration = None
        cleaned = self.validate_input(**inputs)
        charge = service.credit_cost > 0 and bool(settings.CREDIT_SYSTEM_ENABLED)
        usage, reference = usage_start(
            user,
            service,
            origin=origin,
            summary=self.summarize_input(cleaned),
            charge=charge,
            on_created=on_usage_created,
        )
        started = time.perf_counter()
        try:
            result = self.execute_service(user, **cleaned)
        except Exception as error:
            if not usage_fail(
                usage,
                reference=reference,
                error=f"{type(error).__name__}: {error}",
                reason=f"{self.title()} failed",  # read by people: the title, not the name
                duration_ms=_elapsed_ms(started),
            ):
                usage.refresh_from_db()  # the reconciler failed and refunded it already
            logger.warning(
                "service failed",
                extra={"service": service.name, "usage": usage.pk, "error": repr(error)},
            )
            raise ServiceFailed(service.name, usage) from error
        if not usage_succeed(usage, duration_ms=_elapsed_ms(started)):
            # The reconciler failed and refunded this call while it ran: it took
            # longer than SERVICE_CALL_TIMEOUT_SECONDS, so its result is not served.
            usage.refresh_from_db()
            logger.warning(
                "service call finished after it was reconciled",
                extra={"service": service.name, "usage": usage.pk},
            )
            raise ServiceFailed(service.name, usage)
        return ServiceResult(result=result, usage=usage)


DEFAULT_ICON = "gear"


def service_title(name: str) -> str:
    """``text_sentiment_analysis`` -> ``Text sentiment analysis``."""
    words = name.replace("_", " ").split()
    return " ".join(words).capitalize() if words else name


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
