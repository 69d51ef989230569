"""A metered stream: a provider's tokens passed on as they arrive, under a credit hold.

``metered_stream(call)`` is an async generator (Django 5.2 under ASGI sends an
async iterator chunk by chunk; a synchronous one it reads to the end first). It
yields each ``TextDelta`` as the provider sends it, then one ``StreamOutcome``:
what the call generated, the usage it was charged for and the credits charged.
The caller opened the call's hold before (``StreamCall.hold_key``); the stream
always closes it, exactly once:

- the provider ends the stream: the hold is settled to the provider's reported
  usage, or, when the server sent none (an OpenAI-compatible server that ignores
  ``stream_options``), to the counted usage (``counted_usage``);
- the provider fails (429, 5xx, unknown model, timeout, a stream cut short):
  the hold is released and nothing is charged, whatever arrived before;
- the client goes away (the server cancels the request's task, or the response's
  iterator is closed): the provider's stream is closed, so it stops generating,
  and the hold is settled to the counted usage of what was generated. That
  settle runs in a task of its own behind ``asyncio.shield``: a second
  cancellation cannot stop it half way, and a process killed before it ends
  leaves the hold to ``release_expired_holds`` (nothing charged).

The settle, the end of the call's ``ServiceUsage`` row and ``StreamCall.record``
(where the caller stores what happened: the chat app saves the reply; what it
returns is passed on in ``StreamOutcome.details``) commit in one transaction,
in a worker thread. Between the database steps a stream holds no connection
(``release_connection``): a reply can take a minute, and a pool of 10 would
otherwise hold up the 11th stream for all of it.

``opened_stream`` opens the call (its hold) when the response starts rather than
in the view, so a client gone before then costs nothing; ``StreamingService`` is
what a service implements to answer the API's ``"stream": true``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from asgiref.sync import sync_to_async
from django.db import connection, transaction

from credits.exceptions import HoldReleased
from llm import metering
from llm.models import LLMServiceConfig
from llm.providers import (
    LLMRequest,
    Provider,
    ProviderError,
    StreamEnd,
    TextDelta,
    TokenUsage,
)
from services.models import ServiceUsage
from services.usage import UsageHook, usage_fail
from users.models import CustomUser

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")
Ending = Literal["complete", "stopped", "failed"]


@dataclass(frozen=True)
class StreamOutcome:
    """How a metered stream ended and what it cost.

    ``ending``: *complete* (the provider finished), *stopped* (the client went
    away; charged for what was generated) or *failed* (the provider failed;
    nothing charged). ``usage_reported`` is False when ``usage`` was counted
    here rather than reported by the provider.
    """

    ending: Ending
    text: str
    usage: TokenUsage
    usage_reported: bool
    credits_charged: Decimal
    finish_reason: str = ""
    error: str = ""
    provider_status: int | None = None
    duration_ms: int = 0
    details: dict[str, Any] = field(default_factory=dict)


# Called once with the outcome (before ``details`` is set), in a worker thread.
Recorder = Callable[[StreamOutcome], dict[str, Any] | None]


@dataclass(frozen=True)
class StreamCall:
    """One streamed call, its hold already open (``hold_key`` None: a free call)."""

    provider: Provider
    request: LLMRequest
    config: LLMServiceConfig
    hold_key: str | None
    usage: ServiceUsage | None = None  # the call's pending usage row, ended with it
    record: Recorder | None = None


def counted_usage(request: LLMRequest, text: str, pieces: int) -> TokenUsage:
    """The usage of a stream the provider never reported: counted, never more than was held.

    Input: ``metering.estimate_prompt_tokens``, the documented upper bound the
    hold was made with (a tokenizer would have to download its tables at run
    time). Output: at least one token per piece received (OpenAI-compatible
    servers send one token a chunk) and at least one per 4 bytes of text (a
    common average; Anthropic's pieces carry several tokens), capped at
    ``max_tokens``.
    """
    input_tokens = metering.estimate_prompt_tokens(request.messages, request.system)
    by_bytes = math.ceil(len(text.encode()) / 4)
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=min(request.max_tokens, max(pieces, by_bytes)),
    )


@dataclass(frozen=True)
class StreamRefused:
    """The call was refused before the provider was asked (nothing held, nothing charged).

    ``code`` and ``status`` are what the API would answer without a stream
    (``insufficient_credits`` 402, ``provider_not_configured`` 503 ...).
    """

    code: str
    status: int
    message: str


# Builds the call and opens its hold; raises what ``refusal`` turns into a StreamRefused.
CallOpener = Callable[[], StreamCall]
Refusal = Callable[[Exception], StreamRefused | None]


@dataclass(frozen=True)
class StreamStart:
    """A streamed call that passed its checks: its events (lazy), and the model it asks."""

    events: AsyncIterator[TextDelta | StreamOutcome | StreamRefused]
    model: str


@runtime_checkable
class StreamingService(Protocol):
    """A service that can answer ``"stream": true`` (the chat does)."""

    def start_stream(
        self,
        user: CustomUser,
        *,
        origin: str,
        inputs: dict[str, Any],
        on_usage_created: UsageHook | None = None,
    ) -> StreamStart:
        """Check ``inputs`` and the balance (raising what a call without a stream would),
        store what the call needs, and return its events, which open the hold when read."""
        ...


async def opened_stream(
    open_call: CallOpener, refusal: Refusal
) -> AsyncIterator[TextDelta | StreamOutcome | StreamRefused]:
    """Open the call (its hold) when the response starts, then ``metered_stream`` it.

    Opening inside the response's iterator, not in the view, means a client that
    is gone before the response starts costs nothing: no hold, no provider call.
    ``refusal`` maps an exception of ``open_call`` to what the client is told
    (None: not a refusal, it propagates). A cancellation while the call opens
    leaves a hold it may have opened to ``release_expired_holds``.
    """
    try:
        call = await sync_to_async(_open_and_release)(open_call)
    except Exception as error:
        refused = refusal(error)
        if refused is None:
            raise
        yield refused
        return
    async for event in metered_stream(call):
        yield event


def release_connection() -> None:
    """Hand this thread's database connection back while a stream waits on the model.

    A request keeps its connection until it finishes, and a stream's request
    lasts as long as the model writes: a pool of 10 would hold up the 11th
    stream for a whole reply. Streaming code calls this after each database
    step. Inside a transaction (a caller's, or a test's) it does nothing.
    """
    if not connection.in_atomic_block:
        connection.close()


def _open_and_release(open_call: CallOpener) -> StreamCall:
    try:
        return open_call()
    finally:
        release_connection()


async def metered_stream(call: StreamCall) -> AsyncIterator[TextDelta | StreamOutcome]:
    """Yield the text as it arrives, then the ``StreamOutcome`` (see the module docstring)."""
    started = time.perf_counter()
    parts: list[str] = []
    events = call.provider.astream(call.request)
    ended = False
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                parts.append(event.text)
                yield event
            elif isinstance(event, StreamEnd):
                reported = event.usage is not None
                usage = event.usage or counted_usage(call.request, "".join(parts), len(parts))
                outcome = StreamOutcome(
                    ending="complete",
                    text="".join(parts),
                    usage=usage,
                    usage_reported=reported,
                    credits_charged=ZERO,
                    finish_reason=event.finish_reason,
                    duration_ms=_elapsed_ms(started),
                )
                ended = True
                yield await _close(call, outcome)
                return
    except Exception as error:
        # Nothing is charged for a failed call, whatever arrived before the failure.
        ended = True
        if isinstance(error, ProviderError):
            message, status = error.message, error.status
            logger.warning(
                "llm stream failed",
                extra={"model": call.request.model, "status": status, "error": message},
            )
        else:
            message, status = "The model call failed unexpectedly; nothing was charged.", None
            logger.exception("llm stream broke", extra={"model": call.request.model})
        outcome = StreamOutcome(
            ending="failed",
            text="".join(parts),
            usage=TokenUsage(0, 0),
            usage_reported=False,
            credits_charged=ZERO,
            error=message,
            provider_status=status,
            duration_ms=_elapsed_ms(started),
        )
        yield await _close(call, outcome)
        return
    finally:
        if not ended:
            # The client went away (CancelledError or GeneratorExit at a yield or an
            # await): stop the provider and charge what it generated, shielded.
            text = "".join(parts)
            outcome = StreamOutcome(
                ending="stopped",
                text=text,
                usage=counted_usage(call.request, text, len(parts)),
                usage_reported=False,
                credits_charged=ZERO,
                finish_reason="client_disconnected",
                duration_ms=_elapsed_ms(started),
            )
            await _shielded(_abandon(call, events, outcome))
    # A provider stream that ends without its StreamEnd raises ProviderError (providers.py).


async def _abandon(
    call: StreamCall, events: AsyncIterator[Any], outcome: StreamOutcome
) -> StreamOutcome:
    """Close the provider's stream (it stops generating), then settle what it generated."""
    close = getattr(events, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception as error:  # the settle matters more than a failed close
            logger.warning("llm stream close failed", extra={"error": repr(error)})
    logger.info(
        "llm stream abandoned by the client",
        extra={"model": call.request.model, "output_tokens": outcome.usage.output_tokens},
    )
    return await _settle_and_record(call, outcome)


async def _close(call: StreamCall, outcome: StreamOutcome) -> StreamOutcome:
    """Settle or release the hold and record the outcome, shielded from cancellation."""
    return await _shielded(_settle_and_record(call, outcome))


async def _shielded(work: Any) -> StreamOutcome:
    """Run ``work`` in a task a cancellation of the caller cannot stop, and wait for it.

    When the caller is cancelled again while it waits, the task goes on by itself.
    """
    task: asyncio.Task[StreamOutcome] = asyncio.ensure_future(work)
    return await asyncio.shield(task)


async def _settle_and_record(call: StreamCall, outcome: StreamOutcome) -> StreamOutcome:
    result: StreamOutcome = await sync_to_async(_settle_and_record_sync)(call, outcome)
    return result


def _settle_and_record_sync(call: StreamCall, outcome: StreamOutcome) -> StreamOutcome:
    """Close the hold as ``outcome`` says, end the call's usage row, then ``record`` it."""
    try:
        return _close_call(call, outcome)
    finally:
        release_connection()


def _close_call(call: StreamCall, outcome: StreamOutcome) -> StreamOutcome:
    # One transaction (one commit): the hold closed, the usage row ended, the record.
    error = outcome.error
    if outcome.ending != "failed":
        try:
            with transaction.atomic():
                charged = _settle(call, outcome)
                return _recorded(call, replace(outcome, credits_charged=charged))
        except (HoldReleased, _Reconciled) as late:
            # Too late to charge (the sweep freed the hold, or the reconciler failed the
            # call): it costs nothing, as every call whose end was not recorded. The
            # transaction above rolled back whole (no savepoint: two statements fewer
            # on every settle); the call is failed in one of its own.
            error = f"{type(late).__name__}: {late}"
    with transaction.atomic():
        _fail(call, error, outcome.duration_ms)
        return _recorded(call, replace(outcome, credits_charged=ZERO))


def _recorded(call: StreamCall, outcome: StreamOutcome) -> StreamOutcome:
    """``outcome`` with what ``call.record`` returned (in the caller's transaction)."""
    if call.record is None:
        return outcome
    return replace(outcome, details=call.record(outcome) or {})


def _settle(call: StreamCall, outcome: StreamOutcome) -> Decimal:
    """Settle the hold and mark the usage row ended (the caller's transaction)."""
    entry = metering.settle_entry(call.hold_key, call.config, outcome.usage)
    charged = -entry.amount if entry is not None else ZERO
    if call.usage is not None:
        # A stopped stream is a call cancelled while it ran: charged for its part.
        status = (
            ServiceUsage.Status.SUCCEEDED
            if outcome.ending == "complete"
            else ServiceUsage.Status.CANCELLED
        )
        changed = ServiceUsage.objects.filter(
            pk=call.usage.pk, status=ServiceUsage.Status.PENDING
        ).update(
            status=status,
            credits_charged=charged,
            ledger_entry=entry,
            duration_ms=outcome.duration_ms,
        )
        if not changed:
            raise _Reconciled("the call's usage was no longer pending")  # rolls back
    logger.info(
        "llm stream charged",
        extra={
            "model": call.request.model,
            "ending": outcome.ending,
            "input_tokens": outcome.usage.input_tokens,
            "output_tokens": outcome.usage.output_tokens,
            "usage_reported": outcome.usage_reported,
            "charged": str(charged),
        },
    )
    return charged


def _fail(call: StreamCall, error: str, duration_ms: int) -> None:
    """Release the hold and fail the usage row: nothing is charged."""
    metering.release(call.hold_key)
    if call.usage is not None:
        usage_fail(
            call.usage,
            reference="",
            error=error,
            reason="LLM stream failed",
            duration_ms=duration_ms,
        )


class _Reconciled(Exception):
    """The call's usage row was ended by someone else (the reconciler) first."""


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
