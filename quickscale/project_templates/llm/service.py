"""``LLMService``: the base of every LLM service (``generate-service --type llm``).

A subclass declares its prompt and model in ``llm_defaults`` (an ``LLMDefaults``):
provider, model, temperature, default and most ``max_tokens``, the model's context
window, the longest input, credits per 1,000 input and output tokens, a system
prompt, a prompt template (``$text`` is the input) and, for structured output, a JSON
Schema. The first call creates the service's ``LLMServiceConfig`` row from them;
from then on the row is the operator's (admin, ``manage.py configure_llm_service``).

A call (``run``, from the service page or the API) goes:

1. the provider must be configured, else ``ServiceNotConfigured`` naming the variable
   to set (the page says so, the API answers 503); nothing is held;
2. ``validate_input``: the input's fields, each at most ``max_input_chars``;
   ``max_tokens`` from 1 to the cap; the prompt's upper-bound token estimate plus
   ``max_tokens`` within the context window; else ``ServiceInputError`` (422),
   nothing held;
3. ``metering.open_hold`` holds the call's most possible cost
   (``InsufficientCredits``: 402, the provider is never called), and a pending
   ``ServiceUsage`` row is written;
4. the provider is called (outside any transaction). With a JSON Schema, a reply
   that is not JSON or fails the schema is asked for once more; the failed
   attempt's output is never charged (its input is: the provider read it; the hold
   covers both prompts). A second failure fails the call;
5. success: in one transaction the hold is settled to the provider's reported usage
   (a server that reports none: the counted usage, ``reply_usage``) and the usage
   row marked succeeded with what was charged. Any failure (provider
   error, timeout, unknown model, a reply that failed its schema twice): the hold
   is released, nothing is charged, and ``ServiceFailed`` is raised with the
   provider's error as its cause (the API answers 502 for a ``ProviderError``).

As a background job (``async: true`` in the API, or ``long_running = True``) the
same call runs in a worker: the job framework holds the same most possible cost
(in units of 0.01 credit, ``billable_units``) and charges the units the reply cost.
"""

from __future__ import annotations

import json
import logging
import string
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import jsonschema
from django import forms
from django.conf import settings
from django.db import transaction

from credits.exceptions import HoldReleased
from llm import metering
from llm.models import LLMServiceConfig
from llm.providers import (
    ChatMessage,
    LLMReply,
    LLMRequest,
    Provider,
    ProviderNotConfigured,
    TokenUsage,
    provider_for,
)
from llm.streaming import counted_usage
from services.base import BaseService, ServiceResult
from services.exceptions import ServiceFailed, ServiceInputError, ServiceNotConfigured
from services.models import Service, ServiceUsage
from services.usage import UsageHook, usage_fail, usage_start
from services.validation import clean_int, clean_text, only_fields
from users.models import CustomUser

if TYPE_CHECKING:
    from services.jobs import JobContext

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
MAX_TOKENS_FIELD = "max_tokens"
# Finish reasons of a reply cut at max_tokens (OpenAI-compatible, Anthropic).
CUT_AT_LIMIT = frozenset({"length", "max_tokens"})


@dataclass(frozen=True)
class LLMDefaults:
    """A service's initial ``LLMServiceConfig`` (see ``llm/models.py`` for each field)."""

    provider: str = "openai"
    model: str = "gpt-4o-mini"
    temperature: Decimal = Decimal("0.70")
    max_tokens: int = 512
    max_tokens_cap: int = 4096
    context_window: int = 128_000
    max_input_chars: int = 20_000
    input_price_per_1k: Decimal = Decimal("0.05")
    output_price_per_1k: Decimal = Decimal("0.20")
    system_prompt: str = ""
    prompt_template: str = "$text"
    json_schema: dict[str, Any] | None = field(default=None, hash=False)


class LLMTextForm(forms.Form):
    """A text, and optionally how many tokens the answer may have."""

    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), strip=False)
    max_tokens = forms.IntegerField(
        required=False,
        help_text="The longest answer, in tokens (empty: the service's default).",
    )


class StructuredOutputError(Exception):
    """The model's reply was not JSON valid against the service's schema, twice."""


@dataclass(frozen=True)
class ModelOutcome:
    """A successful call: its result and the tokens it is charged for."""

    result: dict[str, Any]
    billable: TokenUsage


class LLMService(BaseService):
    """Base class of LLM services: prompt template + optional JSON schema, per-token credits."""

    result_template: ClassVar[str] = "services/results/llm.html"
    llm_defaults: ClassVar[LLMDefaults] = LLMDefaults()
    # The input fields the prompt template uses ($text ...); each is a text.
    input_fields: ClassVar[tuple[str, ...]] = ("text",)
    form_class: ClassVar[type[forms.Form]] = LLMTextForm
    default_credit_cost: ClassVar[Decimal] = Decimal("0.00")  # priced per token instead

    _llm_config: LLMServiceConfig | None = None

    # --------------------------------------------------------------- configuration

    def configuration(self) -> Service:
        """The active ``Service`` row (``BaseService.configuration``), read in the same
        query as this service's ``LLMServiceConfig`` when both are still to be read: a
        streamed call waits for each query before its first token."""
        if self._configuration is None and self._llm_config is None:
            config = (
                LLMServiceConfig.objects.select_related("service")
                .filter(service__name=self.name, service__is_active=True)
                .first()
            )
            if config is not None:
                self._configuration = config.service
                self._llm_config = config
        # No row yet (its first call creates it) or an inactive service: read as usual.
        return super().configuration()

    def llm_config(self) -> LLMServiceConfig:
        """This service's ``LLMServiceConfig``, created from ``llm_defaults`` on first use."""
        if self._llm_config is None:
            service = self._configuration or Service.objects.get(name=self.name)
            defaults = asdict(self.llm_defaults)
            config = LLMServiceConfig.objects.filter(service=service).first()
            if config is None:
                with transaction.atomic():
                    config, _ = LLMServiceConfig.objects.select_for_update().get_or_create(
                        service=service, defaults=defaults
                    )
            config.service = service
            self._llm_config = config
        return self._llm_config

    def provider(self) -> Provider:
        """The configured provider, or ``ServiceNotConfigured`` naming the variable to set."""
        provider = provider_for(self.llm_config().provider)
        try:
            provider.check_configured()
        except ProviderNotConfigured as error:
            raise ServiceNotConfigured(self.name, str(error)) from error
        return provider

    def pricing(self) -> str:
        config = self.llm_config()
        return (
            f"{config.input_price_per_1k.normalize():f} credits per 1,000 input tokens, "
            f"{config.output_price_per_1k.normalize():f} per 1,000 output tokens"
        )

    def setup_problem(self) -> str:
        try:
            self.provider()
        except ServiceNotConfigured as error:
            return error.message
        return ""

    # --------------------------------------------------------------- input and request

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        """Check the fields, their length, ``max_tokens`` and that the prompt fits the model.

        The provider is checked first: an unconfigured service refuses every call
        (``ServiceNotConfigured``), whether run at once or queued as a job.
        """
        self.provider()
        config = self.llm_config()
        only_fields(inputs, {*self.input_fields, MAX_TOKENS_FIELD})
        cleaned: dict[str, Any] = {
            name: clean_text(inputs.get(name), field=name, max_chars=config.max_input_chars)
            for name in self.input_fields
        }
        cleaned[MAX_TOKENS_FIELD] = clean_int(
            inputs.get(MAX_TOKENS_FIELD),
            field=MAX_TOKENS_FIELD,
            default=config.max_tokens,
            low=1,
            high=config.max_tokens_cap,
        )
        request = self.build_request(cleaned)
        estimate = metering.estimate_request_tokens(request)
        room = config.context_window - request.max_tokens
        if estimate > room:
            raise ServiceInputError.for_field(
                self.input_fields[0],
                f"The prompt is too long for the model: about {estimate} tokens (an upper "
                f"estimate) plus {request.max_tokens} for the answer exceed its context of "
                f"{config.context_window} tokens. Send a shorter text or ask for fewer tokens.",
            )
        return cleaned

    def build_request(self, cleaned: dict[str, Any]) -> LLMRequest:
        """The provider request of cleaned inputs: the template filled in, the config's model."""
        config = self.llm_config()
        values = {name: cleaned[name] for name in self.input_fields}
        try:
            prompt = string.Template(config.prompt_template).substitute(values)
        except (KeyError, ValueError) as error:
            raise ServiceInputError(
                f"The service's prompt template uses a field it has no input for: {error}. "
                "Fix the template in the admin."
            ) from None
        return LLMRequest(
            messages=(ChatMessage("user", prompt),),
            model=config.model,
            max_tokens=int(cleaned[MAX_TOKENS_FIELD]),
            temperature=float(config.temperature),
            system=config.system_prompt or None,
            json_schema=config.json_schema,
        )

    def attempts(self) -> int:
        """How many prompts a call may send: 2 with a schema (one retry), else 1."""
        return 2 if self.llm_config().json_schema is not None else 1

    # --------------------------------------------------------------- the call

    def call_model(self, provider: Provider, request: LLMRequest) -> ModelOutcome:
        """Ask the model; with a schema, retry once on a reply that fails it (see above)."""
        reply = provider.complete(request)
        usage = reply_usage(reply, request, service=self.name)
        if request.json_schema is None:
            return ModelOutcome(self.text_result(reply, usage), usage)
        try:
            return ModelOutcome(self.structured_result(reply, request.json_schema, usage), usage)
        except StructuredOutputError as first:
            logger.info(
                "llm reply failed its schema; asking again",
                extra={"service": self.name, "error": str(first)},
            )
            failed_input = usage.input_tokens
        retry = provider.complete(request)
        retry_usage = reply_usage(retry, request, service=self.name)
        billable = TokenUsage(
            input_tokens=failed_input + retry_usage.input_tokens,
            output_tokens=retry_usage.output_tokens,
        )
        return ModelOutcome(
            self.structured_result(retry, request.json_schema, retry_usage), billable
        )

    def text_result(self, reply: LLMReply, usage: TokenUsage) -> dict[str, Any]:
        return {"text": reply.text, **_reply_facts(reply, usage)}

    def structured_result(
        self, reply: LLMReply, schema: dict[str, Any], usage: TokenUsage
    ) -> dict[str, Any]:
        """The reply's JSON, validated against ``schema``; ``StructuredOutputError`` if not."""
        text = _without_code_fence(reply.text)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise StructuredOutputError(f"The reply is not JSON: {error}") from None
        try:
            jsonschema.validate(data, schema)
        except jsonschema.ValidationError as error:
            raise StructuredOutputError(
                f"The reply does not match the schema: {error.message}"
            ) from None
        return {"data": data, **_reply_facts(reply, usage)}

    def execute_service(self, user: CustomUser, **kwargs: Any) -> dict[str, Any]:
        """One unmetered call (``run`` and jobs meter it; prefer them)."""
        return self.call_model(self.provider(), self.build_request(kwargs)).result

    def run(
        self,
        user: CustomUser,
        *,
        origin: str = "web",
        on_usage_created: UsageHook | None = None,
        **inputs: Any,
    ) -> ServiceResult:
        """Hold, call, settle (see the module docstring)."""
        service = self.configuration()
        config = self.llm_config()
        cleaned = self.validate_input(**inputs)
        provider = self.provider()
        self._configuration = None
        request = self.build_request(cleaned)
        key = metering.open_hold(user, service.name, config, request, attempts=self.attempts())
        try:
            usage, _ = usage_start(
                user,
                service,
                origin=origin,
                summary=self.summarize_input(cleaned),
                charge=False,
                on_created=on_usage_created,
            )
        except BaseException:
            metering.release(key)
            raise
        started = time.perf_counter()
        try:
            outcome = self.call_model(provider, request)
        except Exception as error:
            self._fail(usage, key, error, started)
            raise ServiceFailed(service.name, usage) from error
        try:
            charged = self._settle(usage, key, config, outcome.billable, started)
        except (HoldReleased, _Reconciled) as error:
            self._fail(usage, key, error, started)
            raise ServiceFailed(service.name, usage) from error
        logger.info(
            "llm call charged",
            extra={
                "service": service.name,
                "usage": usage.pk,
                "input_tokens": outcome.billable.input_tokens,
                "output_tokens": outcome.billable.output_tokens,
                "charged": str(charged),
            },
        )
        result = {**outcome.result, "credits_charged": str(charged)}
        return ServiceResult(result=result, usage=usage)

    def _settle(
        self,
        usage: ServiceUsage,
        key: str | None,
        config: LLMServiceConfig,
        billable: TokenUsage,
        started: float,
    ) -> Decimal:
        """Settle the hold and mark the usage succeeded, together; ``_Reconciled`` if too late."""
        duration_ms = round((time.perf_counter() - started) * 1000)
        with transaction.atomic():
            entry = metering.settle_entry(key, config, billable)
            charged = -entry.amount if entry is not None else Decimal("0.00")
            changed = ServiceUsage.objects.filter(
                pk=usage.pk, status=ServiceUsage.Status.PENDING
            ).update(
                status=ServiceUsage.Status.SUCCEEDED,
                credits_charged=charged,
                ledger_entry=entry,
                duration_ms=duration_ms,
            )
            if not changed:
                raise _Reconciled  # rolls the settle back; the caller releases the hold
        usage.status = ServiceUsage.Status.SUCCEEDED
        usage.credits_charged = charged
        usage.ledger_entry = entry
        usage.duration_ms = duration_ms
        return charged

    def _fail(
        self, usage: ServiceUsage, key: str | None, error: BaseException, started: float
    ) -> None:
        metering.release(key)
        if not usage_fail(
            usage,
            reference="",
            error=f"{type(error).__name__}: {error}",
            reason=f"{self.title()} failed",  # read by people: the title, not the name
            duration_ms=round((time.perf_counter() - started) * 1000),
        ):
            usage.refresh_from_db()
        logger.warning(
            "llm call failed; nothing charged",
            extra={"service": self.name, "usage": usage.pk, "error": repr(error)},
        )

    # --------------------------------------------------------------- as a background job

    def run_time_limit(self) -> int:
        """Long enough for every attempt and its retries (``metering.hold_seconds``).

        A job's hold and ``expires_at`` are derived from it, so they cover the
        schema retry's second prompt too.
        """
        return max(super().run_time_limit(), metering.hold_seconds(attempts=self.attempts()))

    def unit_price(self, service: Service) -> Decimal:
        """A job's units are hundredths of a credit (see ``billable_units``)."""
        return CENT

    def billable_units(self, cleaned: dict[str, Any]) -> int:
        """The call's most possible cost in hundredths of a credit (0 when it is free)."""
        config = self.llm_config()
        if not metering.charges(config):
            return 0
        cost = metering.max_cost(config, self.build_request(cleaned), attempts=self.attempts())
        return int(cost / CENT)

    def execute_job(self, job: JobContext, **kwargs: Any) -> dict[str, Any]:
        """Call the model in a worker; charge the hundredths of a credit the reply cost.

        The call runs in a thread while this one reports progress every third of
        ``JOB_LEASE_SECONDS``: a model that takes minutes must not look like a dead
        worker, whose job the sweep would run (and send to the provider) again. A
        cancel stops the wait at the next report; the job is then charged nothing.
        """
        config = self.llm_config()
        provider = self.provider()
        request = self.build_request(kwargs)
        job.progress(5, "Asking the model")
        outcome = _with_heartbeat(job, lambda: self.call_model(provider, request))
        cost = metering.cost_of(config, outcome.billable) if metering.charges(config) else 0
        job.charge(int(Decimal(cost) / CENT))
        return outcome.result


def _with_heartbeat(job: JobContext, call: Callable[[], ModelOutcome]) -> ModelOutcome:
    """Run ``call`` in a thread, renewing the job's lease until it returns (or raises)."""
    interval = max(0.2, int(settings.JOB_LEASE_SECONDS) / 3)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-job")
    try:
        future = pool.submit(call)
        while True:
            try:
                return future.result(timeout=interval)
            except FutureTimeout:
                job.progress(50, "Waiting for the model")  # raises to stop the job
    finally:
        pool.shutdown(wait=False)  # a cancelled job does not wait for the provider


class _Reconciled(Exception):
    """The call's usage row was failed by the reconciler while the provider answered."""


def reply_usage(reply: LLMReply, request: LLMRequest, *, service: str = "") -> TokenUsage:
    """The tokens ``reply`` is charged for: the provider's usage, else counted.

    A server that reports no usage (some OpenAI-compatible ones) must not make the
    call free: it is charged ``llm.streaming.counted_usage``, as a stream without
    usage is (the prompt's upper-bound estimate; the reply at one token per 4 bytes,
    at most ``max_tokens``). A reply cut at the limit used all ``max_tokens``.
    """
    if reply.usage is not None:
        return reply.usage
    counted = counted_usage(request, reply.text, pieces=0)
    if reply.finish_reason in CUT_AT_LIMIT:
        counted = TokenUsage(input_tokens=counted.input_tokens, output_tokens=request.max_tokens)
    logger.warning(
        "llm reply without usage; charging the counted tokens",
        extra={
            "service": service,
            "model": reply.model,
            "input_tokens": counted.input_tokens,
            "output_tokens": counted.output_tokens,
        },
    )
    return counted


def _reply_facts(reply: LLMReply, usage: TokenUsage) -> dict[str, Any]:
    return {
        "model": reply.model,
        "finish_reason": reply.finish_reason,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
    }


def _without_code_fence(text: str) -> str:
    """The reply without one surrounding ``` fence (some models add one around JSON)."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and stripped.count("\n") >= 1:
        stripped = stripped.split("\n", 1)[1].rsplit("```", 1)[0]
    return stripped.strip()
