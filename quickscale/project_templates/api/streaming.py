"""``"stream": true``: a service's reply as server-sent events, in OpenAI's chunk style.

What an OpenAI client reads from ``/v1/chat/completions`` with ``stream: true``
and ``stream_options.include_usage``, so the official SDKs parse it (their
low-level ``post(..., stream=True)``): one ``data:`` line per event, each a
``chat.completion.chunk``; the first delta carries the role, then one chunk per
piece of text as the provider sends it; a chunk with the ``finish_reason``;
then a chunk with no choices carrying ``usage`` (``prompt_tokens``,
``completion_tokens``, ``total_tokens``) and, beside it, what the call was
charged: ``credits_charged`` (a string, 2 decimals), ``usage_reported`` (false
when the provider sent no usage and the tokens were counted), the ``service``
and the service's own ``details`` (the chat's conversation and message ids);
finally ``data: [DONE]``.

A call refused before the provider was asked, or a provider that fails, ends
the stream with ``data: {"error": {"code", "message", "status"}}`` (the status
a call without a stream would have been answered) and ``[DONE]``; nothing is
charged then. A client that goes away is charged for what was generated
(``llm.streaming``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from django.http import StreamingHttpResponse

from llm.providers import TextDelta
from llm.streaming import StreamOutcome, StreamRefused

StreamEvents = AsyncIterator[TextDelta | StreamOutcome | StreamRefused]
DONE = b"data: [DONE]\n\n"
PROVIDER_FAILED_STATUS = 502


def event_stream_response(
    events: StreamEvents, *, service: str, model: str
) -> StreamingHttpResponse:
    """The response of a streamed run: ``text/event-stream``, sent as the events come."""
    response = StreamingHttpResponse(
        _chunks(events, service=service, model=model), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache, no-store"
    # A proxy such as nginx would otherwise collect the stream before passing it on.
    response["X-Accel-Buffering"] = "no"
    return response


async def _chunks(events: StreamEvents, *, service: str, model: str) -> AsyncIterator[bytes]:
    chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    pieces = _PieceChunks(_base(chunk_id, created, model))

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return _data(_base(chunk_id, created, model) | {"choices": [choice]})

    started = False
    # The last events (the finish, the usage or an error, then [DONE]) go out in one
    # write, as soon as the stream's outcome (its settle) is known.
    ending = b""
    async for event in events:
        if isinstance(event, TextDelta):
            if started:
                yield pieces.content(event.text)
            else:
                yield chunk({"role": "assistant", "content": event.text}, None)
                started = True
        elif isinstance(event, StreamRefused):
            ending = _error(event.code, event.message, event.status)
        elif event.ending == "failed":
            ending = _error(
                "provider_error",
                f"{event.error} Nothing was charged.",
                PROVIDER_FAILED_STATUS,
                provider_status=event.provider_status,
            )
        else:
            usage = {
                "prompt_tokens": event.usage.input_tokens,
                "completion_tokens": event.usage.output_tokens,
                "total_tokens": event.usage.input_tokens + event.usage.output_tokens,
            }
            ending = chunk({}, event.finish_reason or "stop") + _data(
                _base(chunk_id, created, model)
                | {
                    "choices": [],
                    "usage": usage,
                    "credits_charged": f"{event.credits_charged:.2f}",
                    "usage_reported": event.usage_reported,
                    "service": service,
                    "details": event.details,
                }
            )
    yield ending + DONE


class _PieceChunks:
    """The chunk of one piece of text, built from its constant parts (one per token:
    a web process streaming to many clients spends its CPU here).

    The bytes are those ``_data`` writes for ``{... "choices": [{"index": 0, "delta":
    {"content": text}, "finish_reason": null, "logprobs": null}]}``.
    """

    def __init__(self, base: dict[str, Any]) -> None:
        head = _json(base | {"choices": [{"index": 0, "delta": {"content": ""}}]})
        # Cut at the empty content: everything before it and after it never changes.
        self._before = b"data: " + head[: head.rindex('""')].encode()
        self._after = b'},"finish_reason":null,"logprobs":null}]}\n\n'

    def content(self, text: str) -> bytes:
        return self._before + _json(text).encode() + self._after


def _base(chunk_id: str, created: int, model: str) -> dict[str, Any]:
    return {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}


def _error(code: str, message: str, status: int, **extra: Any) -> bytes:
    return _data({"error": {"code": code, "message": message, "status": status, **extra}})


def _data(payload: dict[str, Any]) -> bytes:
    return f"data: {_json(payload)}\n\n".encode()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
