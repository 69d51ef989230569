"""LLM providers through their official SDKs: ``openai`` and ``anthropic``.

One small interface over both, so services, metering and streaming never touch an SDK:

    provider = provider_for("openai")          # or "anthropic"; ProviderNotConfigured
    reply = provider.complete(request)          # sync (services, jobs)
    reply = await provider.acomplete(request)   # async views
    async for event in provider.astream(request):   # TextDelta..., then one StreamEnd
        ...

``openai`` speaks to any OpenAI-compatible endpoint (OpenAI, Azure OpenAI, OpenRouter,
vLLM, Ollama, LM Studio) at ``OPENAI_BASE_URL``; it is configured when
``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set (a local server needs no key).
``anthropic`` needs ``ANTHROPIC_API_KEY`` (``ANTHROPIC_BASE_URL`` optional).

Errors: ``ProviderNotConfigured`` names the variable to set (the API answers 503,
nothing is charged); every failure of the call itself (429, 5xx, unknown model,
timeout, connection lost, a stream cut short) is a ``ProviderError`` with the
provider's status when there was one (the API answers 502, nothing is charged). The
SDKs retry 429/5xx/timeouts ``LLM_MAX_RETRIES`` times before that.

Structured output: ``LLMRequest.json_schema`` asks OpenAI-compatible servers for
``response_format: json_schema`` and Anthropic for ``output_config.format``. Either
way the caller validates the reply (not every model or server complies).

Clients are built once per configuration (and, for async clients, per event loop:
an ``httpx`` pool belongs to the loop it was made on), since building one costs a TLS
context, about 10 ms.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import openai
from django.conf import settings

logger = logging.getLogger(__name__)

PROVIDERS = ("openai", "anthropic")
Role = Literal["user", "assistant"]


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class ChatMessage:
    """One turn of the conversation sent: ``role`` is "user" or "assistant"."""

    role: Role
    content: str


@dataclass(frozen=True)
class LLMRequest:
    """What to ask a model; ``system`` and ``json_schema`` are optional."""

    messages: tuple[ChatMessage, ...]
    model: str
    max_tokens: int
    temperature: float = 0.7
    system: str | None = None
    json_schema: dict[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class TokenUsage:
    """Tokens the provider reports it read and wrote for one call."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class LLMReply:
    """A whole answer: its text, the provider's usage, the model that answered, why it stopped.

    ``usage`` is None when the server reported none (some OpenAI-compatible servers
    leave it out): never read that as zero tokens, the caller counts them instead
    (``llm.service.reply_usage``), as it does for a stream without usage.
    """

    text: str
    usage: TokenUsage | None
    model: str
    finish_reason: str


@dataclass(frozen=True)
class TextDelta:
    """A piece of a streamed answer."""

    text: str


@dataclass(frozen=True)
class StreamEnd:
    """The last event of a stream; ``usage`` is None when the server sent none."""

    usage: TokenUsage | None
    finish_reason: str


StreamEvent = TextDelta | StreamEnd


# --------------------------------------------------------------------------- errors


class ProviderNotConfigured(Exception):
    """The provider has no credentials: ``variable`` is the environment variable to set."""

    def __init__(self, provider: str, variable: str) -> None:
        self.provider = provider
        self.variable = variable
        super().__init__(f"The {provider} provider is not configured: set {variable}.")


class ProviderError(Exception):
    """The provider call failed; ``status`` is the provider's HTTP status (None: no answer)."""

    def __init__(self, status: int | None, message: str, *, provider: str = "") -> None:
        self.status = status
        self.message = message
        self.provider = provider
        super().__init__(message)


class UnknownProvider(ValueError):
    """A configuration names a provider that does not exist."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"Unknown LLM provider {name!r}; use one of: {', '.join(PROVIDERS)}.")


def _describe(provider: str, error: Exception, model: str) -> ProviderError:
    """Turn an SDK error into a ``ProviderError`` whose message says what to do."""
    status_error = (openai.APIStatusError, anthropic.APIStatusError)
    timeout_error = (openai.APITimeoutError, anthropic.APITimeoutError)
    if isinstance(error, status_error):
        status = error.status_code
        detail = _error_detail(error)
        if status == 404:
            message = f"{provider} does not know the model {model!r} (404): {detail}"
        elif status == 429:
            message = f"{provider} is rate limiting these calls (429); try again shortly."
        elif status in (401, 403):
            message = f"{provider} refused the credentials ({status}); check the API key."
        else:
            message = f"{provider} answered {status}: {detail}"
        return ProviderError(status, message, provider=provider)
    if isinstance(error, timeout_error):
        return ProviderError(None, f"{provider} did not answer in time.", provider=provider)
    return ProviderError(None, f"{provider} could not be reached: {error}", provider=provider)


def _error_detail(error: openai.APIStatusError | anthropic.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(error.message)[:300]


_SDK_ERRORS = (openai.OpenAIError, anthropic.AnthropicError)


# --------------------------------------------------------------------------- providers


class Provider:
    """The interface both providers implement (see the module docstring)."""

    name: str = ""
    variable: str = ""

    def is_configured(self) -> bool:
        raise NotImplementedError

    def complete(self, request: LLMRequest) -> LLMReply:
        raise NotImplementedError

    async def acomplete(self, request: LLMRequest) -> LLMReply:
        raise NotImplementedError

    def astream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError

    def check_configured(self) -> None:
        if not self.is_configured():
            raise ProviderNotConfigured(self.name, self.variable)


def _client_options() -> dict[str, Any]:
    return {
        "timeout": float(settings.LLM_REQUEST_TIMEOUT_SECONDS),
        "max_retries": int(settings.LLM_MAX_RETRIES),
    }


_sync_clients: dict[tuple[Any, ...], Any] = {}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)
_clients_lock = threading.Lock()


def _cached_sync(key: tuple[Any, ...], build: Any) -> Any:
    with _clients_lock:
        client = _sync_clients.get(key)
        if client is None:
            client = _sync_clients[key] = build()
        return client


def _cached_async(key: tuple[Any, ...], build: Any) -> Any:
    loop = asyncio.get_running_loop()
    with _clients_lock:
        clients = _async_clients.setdefault(loop, {})
        client = clients.get(key)
        if client is None:
            client = clients[key] = build()
        return client


class OpenAIProvider(Provider):
    """Chat completions on any OpenAI-compatible endpoint."""

    name = "openai"
    variable = "OPENAI_API_KEY"

    def _settings(self) -> tuple[str, str | None]:
        key = str(getattr(settings, "OPENAI_API_KEY", "") or "")
        base_url = str(getattr(settings, "OPENAI_BASE_URL", "") or "") or None
        # A self-hosted server (Ollama, vLLM...) takes any key; the SDK insists on one.
        return key or "not-needed", base_url

    def is_configured(self) -> bool:
        return bool(
            getattr(settings, "OPENAI_API_KEY", "") or getattr(settings, "OPENAI_BASE_URL", "")
        )

    def _key(self) -> tuple[Any, ...]:
        key, base_url = self._settings()
        options = _client_options()
        return ("openai", key, base_url, options["timeout"], options["max_retries"])

    def _sync_client(self) -> openai.OpenAI:
        self.check_configured()
        key, base_url = self._settings()
        client: openai.OpenAI = _cached_sync(
            self._key(), lambda: openai.OpenAI(api_key=key, base_url=base_url, **_client_options())
        )
        return client

    def _async_client(self) -> openai.AsyncOpenAI:
        self.check_configured()
        key, base_url = self._settings()
        client: openai.AsyncOpenAI = _cached_async(
            self._key(),
            lambda: openai.AsyncOpenAI(api_key=key, base_url=base_url, **_client_options()),
        )
        return client

    @staticmethod
    def _arguments(request: LLMRequest) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend({"role": m.role, "content": m.content} for m in request.messages)
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json_schema is not None:
            arguments["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "result", "schema": request.json_schema, "strict": False},
            }
        return arguments

    def _reply(self, completion: Any, request: LLMRequest) -> LLMReply:
        choice = completion.choices[0] if completion.choices else None
        usage = completion.usage
        return LLMReply(
            text=(choice.message.content or "") if choice else "",
            usage=(
                TokenUsage(
                    input_tokens=int(usage.prompt_tokens),
                    output_tokens=int(usage.completion_tokens),
                )
                if usage is not None
                else None
            ),
            model=str(completion.model or request.model),
            finish_reason=str(choice.finish_reason or "") if choice else "",
        )

    def complete(self, request: LLMRequest) -> LLMReply:
        client = self._sync_client()
        try:
            completion = client.chat.completions.create(**self._arguments(request))
        except _SDK_ERRORS as error:
            raise _describe(self.name, error, request.model) from error
        return self._reply(completion, request)

    async def acomplete(self, request: LLMRequest) -> LLMReply:
        client = self._async_client()
        try:
            completion = await client.chat.completions.create(**self._arguments(request))
        except _SDK_ERRORS as error:
            raise _describe(self.name, error, request.model) from error
        return self._reply(completion, request)

    async def astream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        # The SDK's raw streaming response (its HTTP, auth, retries and status errors),
        # read line by line: its typed stream builds a pydantic model per chunk, about
        # 0.5 ms of CPU a token, the largest per-token cost of a busy web process.
        client = self._async_client()
        usage: TokenUsage | None = None
        finish_reason = ""
        try:
            async with client.chat.completions.with_streaming_response.create(
                **self._arguments(request),
                stream=True,
                stream_options={"include_usage": True},
            ) as response:
                async for _, data in _read_events(self.name, response.iter_lines()):
                    if data.startswith("[DONE]"):
                        break
                    chunk = _event_object(self.name, data)
                    if chunk.get("error"):
                        raise _stream_error(self.name, chunk["error"])
                    reported = chunk.get("usage")
                    if reported:
                        usage = TokenUsage(
                            input_tokens=int(reported["prompt_tokens"]),
                            output_tokens=int(reported["completion_tokens"]),
                        )
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta")
                        if delta and delta.get("content"):
                            yield TextDelta(str(delta["content"]))
                        if choice.get("finish_reason"):
                            finish_reason = str(choice["finish_reason"])
        except _SDK_ERRORS as error:
            raise _describe(self.name, error, request.model) from error
        if not finish_reason:
            raise ProviderError(None, f"{self.name} ended the stream early.", provider=self.name)
        yield StreamEnd(usage=usage, finish_reason=finish_reason)


class AnthropicProvider(Provider):
    """Anthropic's messages API."""

    name = "anthropic"
    variable = "ANTHROPIC_API_KEY"

    def _settings(self) -> tuple[str, str | None]:
        key = str(getattr(settings, "ANTHROPIC_API_KEY", "") or "")
        base_url = str(getattr(settings, "ANTHROPIC_BASE_URL", "") or "") or None
        return key, base_url

    def is_configured(self) -> bool:
        return bool(getattr(settings, "ANTHROPIC_API_KEY", ""))

    def _key(self) -> tuple[Any, ...]:
        key, base_url = self._settings()
        options = _client_options()
        return ("anthropic", key, base_url, options["timeout"], options["max_retries"])

    def _sync_client(self) -> anthropic.Anthropic:
        self.check_configured()
        key, base_url = self._settings()
        client: anthropic.Anthropic = _cached_sync(
            self._key(),
            lambda: anthropic.Anthropic(api_key=key, base_url=base_url, **_client_options()),
        )
        return client

    def _async_client(self) -> anthropic.AsyncAnthropic:
        self.check_configured()
        key, base_url = self._settings()
        client: anthropic.AsyncAnthropic = _cached_async(
            self._key(),
            lambda: anthropic.AsyncAnthropic(api_key=key, base_url=base_url, **_client_options()),
        )
        return client

    @staticmethod
    def _arguments(request: LLMRequest) -> dict[str, Any]:
        # No temperature: the current Messages API (SDK 2.x) no longer takes sampling
        # parameters, so a service's temperature applies to OpenAI-compatible models only.
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
        }
        if request.system:
            arguments["system"] = request.system
        if request.json_schema is not None:
            arguments["output_config"] = {
                "format": {"type": "json_schema", "schema": request.json_schema}
            }
        return arguments

    @staticmethod
    def _reply(message: Any, request: LLMRequest) -> LLMReply:
        text = "".join(
            block.text for block in message.content if getattr(block, "type", "") == "text"
        )
        return LLMReply(
            text=text,
            usage=TokenUsage(
                input_tokens=int(message.usage.input_tokens),
                output_tokens=int(message.usage.output_tokens),
            ),
            model=str(message.model or request.model),
            finish_reason=str(message.stop_reason or ""),
        )

    def complete(self, request: LLMRequest) -> LLMReply:
        client = self._sync_client()
        try:
            message = client.messages.create(**self._arguments(request))
        except _SDK_ERRORS as error:
            raise _describe(self.name, error, request.model) from error
        return self._reply(message, request)

    async def acomplete(self, request: LLMRequest) -> LLMReply:
        client = self._async_client()
        try:
            message = await client.messages.create(**self._arguments(request))
        except _SDK_ERRORS as error:
            raise _describe(self.name, error, request.model) from error
        return self._reply(message, request)

    async def astream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        # The raw streaming response, parsed here (see OpenAIProvider.astream).
        client = self._async_client()
        input_tokens: int | None = None
        output_tokens: int | None = None
        finish_reason = ""
        try:
            async with client.messages.with_streaming_response.create(
                **self._arguments(request), stream=True
            ) as response:
                async for name, data in _read_events(self.name, response.iter_lines()):
                    event = _event_object(self.name, data)
                    kind = event.get("type") or name
                    if kind == "content_block_delta":
                        delta = event.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            yield TextDelta(str(delta["text"]))
                    elif kind == "message_start":
                        input_tokens = int(event["message"]["usage"]["input_tokens"])
                    elif kind == "message_delta":
                        output_tokens = int(event["usage"]["output_tokens"])
                        finish_reason = str(event["delta"].get("stop_reason") or "")
                    elif kind == "message_stop":
                        finish_reason = finish_reason or "end_turn"
                    elif kind == "error":
                        raise _stream_error(self.name, event.get("error"))
        except _SDK_ERRORS as error:
            raise _describe(self.name, error, request.model) from error
        if not finish_reason:
            raise ProviderError(None, f"{self.name} ended the stream early.", provider=self.name)
        usage = (
            TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens)
            if input_tokens is not None and output_tokens is not None
            else None
        )
        yield StreamEnd(usage=usage, finish_reason=finish_reason)


# --------------------------------------------------------------------------- raw streams


async def _read_events(provider: str, lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """The (event name, data) of each server-sent event in ``lines`` (the SDK's response).

    Comments and ``id``/``retry`` fields carry nothing used here. A connection that
    breaks mid-stream (reset, truncated body, read timeout) is a ``ProviderError``
    raised after the events read before it, as a stream cut short.
    """
    name = ""
    data: list[str] = []
    try:
        async for line in lines:
            if not line:
                if data:
                    yield name, "\n".join(data)
                name, data = "", []
            elif line.startswith("data:"):
                data.append(line[6:] if line.startswith("data: ") else line[5:])
            elif line.startswith("event:"):
                name = line[6:].strip()
    except _SDK_ERRORS:
        raise
    except Exception as error:  # the HTTP client's own transport errors
        logger.warning("llm stream broke off", extra={"provider": provider, "error": repr(error)})
        raise ProviderError(
            None, f"{provider} broke off the stream ({type(error).__name__}).", provider=provider
        ) from error
    if data:
        yield name, "\n".join(data)


def _event_object(provider: str, data: str) -> dict[str, Any]:
    """One event's JSON object; anything else is the provider's error."""
    try:
        event = json.loads(data)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise ProviderError(None, f"{provider} sent a malformed stream event.", provider=provider)
    return event


def _stream_error(provider: str, error: Any) -> ProviderError:
    """An error the provider reported inside a stream it had started (status 200 already)."""
    message = error.get("message") if isinstance(error, dict) else error
    detail = str(message or "no detail")[:300]
    return ProviderError(None, f"{provider} failed mid-stream: {detail}", provider=provider)


_PROVIDERS: dict[str, Provider] = {
    OpenAIProvider.name: OpenAIProvider(),
    AnthropicProvider.name: AnthropicProvider(),
}


def provider_for(name: str) -> Provider:
    """The provider ``name`` ("openai" or "anthropic"); ``UnknownProvider`` otherwise.

    It is returned even when not configured (its pages say so); calling it raises
    ``ProviderNotConfigured``. Call ``check_configured()`` to find out first.
    """
    try:
        return _PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(name) from None
