"""A local fake LLM provider: a real HTTP server speaking OpenAI's and Anthropic's wire protocols.

Tests drive it through the official SDKs (``openai``, ``anthropic``) pointed at it
by ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``, so what is tested is the real
client code, its parsing, retries and timeouts; only the network's far end is fake.

It serves, on an ephemeral port of 127.0.0.1:
  ``POST /v1/chat/completions``: OpenAI chat completions, JSON or server-sent events
  (``"stream": true``; with ``stream_options.include_usage`` the last chunk carries the
  usage, as OpenAI sends it, then ``data: [DONE]``);
  ``POST /v1/messages``: Anthropic messages, JSON or its streaming events
  (``message_start`` with the input tokens ... ``message_delta`` with the output tokens).

Each request takes the next ``Script`` queued with ``queue`` (else ``default``): the
reply's text and stream pieces, token counts, delays (before the first token, between
tokens), an error status (429, 500 ... in each provider's error shape), a hang (for
client timeouts) or a disconnect after some pieces. A model not in ``models`` answers
404 as the real APIs do. Every request is recorded (``requests``) with its body, what
was sent and whether the client went away first.

The ``fake_llm`` fixture (a pytest plugin, loaded by the root conftest) starts one per
test and points the settings at it.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest
from django.db import connection

OPENAI_MODEL = "fake-gpt"
ANTHROPIC_MODEL = "fake-claude"
DEFAULT_REPLY = "Hello from the fake model."
GATE_TIMEOUT_SECONDS = 10

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Script:
    """How the fake answers one request.

    ``chunks``: the stream's text pieces (default: ``text`` split after each word),
    also what the JSON reply joins. ``input_tokens``: default, the prompt's word count
    (so never above the product's upper-bound estimate). ``output_tokens``: default, the
    number of pieces. ``status``: an HTTP error to answer instead (the SDK's retries
    are told to come back after 1 ms). ``hang``: seconds to wait before answering
    anything (a client timeout). ``disconnect_after``: close a stream after that many
    pieces, with no final event. ``include_usage=False``: an OpenAI-compatible server
    that reports no usage (no usage chunk in a stream, no ``usage`` in a JSON reply;
    Anthropic's wire always carries it). ``gate``: an event the answer
    waits for, so a test acts while a call is in flight, then lets it finish.
    """

    text: str = DEFAULT_REPLY
    chunks: list[str] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str = "stop"
    status: int = 200
    error_message: str = "The fake provider was told to fail."
    first_token_delay: float = 0.0
    token_interval: float = 0.0
    hang: float = 0.0
    disconnect_after: int | None = None
    include_usage: bool = True
    # Set by the test to let the answer go: the fake holds it (at most 10 s) until then.
    gate: threading.Event | None = None

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\S+\s*", self.text) or [self.text]


@dataclass
class RecordedRequest:
    """One request the fake received, and what became of it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    chunks_sent: int = 0
    client_disconnected: bool = False
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def streamed(self) -> bool:
        return bool(self.body.get("stream"))


class _ClientGone(Exception):
    """The client closed the connection while the fake was writing."""


def count_words(body: dict[str, Any]) -> int:
    """The fake's input token count: the words of every message and the system prompt."""
    texts: list[str] = []
    system = body.get("system")
    if isinstance(system, str):
        texts.append(system)
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return sum(len(text.split()) for text in texts)


class FakeLLM:
    """The server and its script; ``url`` is its root (``http://127.0.0.1:<port>``)."""

    def __init__(self) -> None:
        self.models: set[str] = {OPENAI_MODEL, ANTHROPIC_MODEL}
        self.default = Script()
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Script] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that hang or wait between tokens
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def queue(self, *scripts: Script) -> None:
        """Answer the next requests with these scripts, in order (then ``default``)."""
        with self._lock:
            self._queue.extend(scripts)

    def reply(self, text: str, **options: Any) -> None:
        """Queue one reply; ``options`` are ``Script`` fields."""
        self.queue(Script(text=text, **options))

    def fail(self, status: int, message: str = "The fake provider was told to fail.") -> None:
        """Answer every request from now on with this error (retries included)."""
        self.default = Script(status=status, error_message=message)

    def _next_script(self, request: RecordedRequest) -> Script:
        with self._lock:
            self.requests.append(request)
            return self._queue.popleft() if self._queue else self.default

    def wait(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)


def _handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.fake = fake
    return Handler


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the tests read ``requests`` instead."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            body = {}
        path = self.path.split("?")[0]
        request = RecordedRequest(
            path=path, headers={k.lower(): v for k, v in self.headers.items()}, body=body
        )
        script = self.fake._next_script(request)
        try:
            if path == "/v1/chat/completions":
                self._answer(request, script, _OpenAIWire(request, script))
            elif path == "/v1/messages":
                self._answer(request, script, _AnthropicWire(request, script))
            else:
                self._send_json(404, {"error": {"message": f"No route {path}"}})
        except _ClientGone:
            request.client_disconnected = True
        finally:
            request.finished.set()

    def _answer(self, request: RecordedRequest, script: Script, wire: _Wire) -> None:
        if script.gate is not None:
            script.gate.wait(GATE_TIMEOUT_SECONDS)
        self.fake.wait(script.hang)
        if script.hang and self._client_gone():
            raise _ClientGone
        if script.status != 200:
            self._send_json(script.status, wire.error(script.status, script.error_message))
            return
        if request.model not in self.fake.models:
            self._send_json(404, wire.error(404, wire.unknown_model_message()))
            return
        if not request.streamed:
            self.fake.wait(script.first_token_delay)
            self._send_json(200, wire.reply())
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self._write(wire.stream_start())
        pieces = script.pieces()
        for index, piece in enumerate(pieces):
            self.fake.wait(script.first_token_delay if index == 0 else script.token_interval)
            if script.disconnect_after is not None and index >= script.disconnect_after:
                self._drop()
                return
            self._write(wire.stream_piece(piece))
            request.chunks_sent += 1
        self._write(wire.stream_end())

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)  # b"": EOF

    def _write(self, data: str) -> None:
        try:
            self.wfile.write(data.encode())
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError) as error:
            raise _ClientGone from error

    def _drop(self) -> None:
        """Close the stream abruptly, as a provider that went away mid-answer."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.close()

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429 or status >= 500:
            # Honoured by both SDKs: their retries come back at once instead of after ~1 s.
            self.send_header("retry-after-ms", "1")
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError) as error:
            raise _ClientGone from error


class _Wire:
    """One provider's wire format for replies, stream events and errors."""

    def __init__(self, request: RecordedRequest, script: Script) -> None:
        self.request = request
        self.script = script
        self.pieces = script.pieces()
        self.input_tokens = (
            script.input_tokens if script.input_tokens is not None else count_words(request.body)
        )
        self.output_tokens = (
            script.output_tokens if script.output_tokens is not None else len(self.pieces)
        )
        self.id = uuid.uuid4().hex[:24]
        self.created = int(time.time())

    def error(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def unknown_model_message(self) -> str:
        raise NotImplementedError

    def reply(self) -> dict[str, Any]:
        raise NotImplementedError

    def stream_start(self) -> str:
        raise NotImplementedError

    def stream_piece(self, piece: str) -> str:
        raise NotImplementedError

    def stream_end(self) -> str:
        raise NotImplementedError


class _OpenAIWire(_Wire):
    def error(self, status: int, message: str) -> dict[str, Any]:
        code = "model_not_found" if status == 404 else None
        kind = _OPENAI_ERROR_TYPES.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def unknown_model_message(self) -> str:
        return f"The model `{self.request.model}` does not exist or you do not have access to it."

    def _usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }

    def reply(self) -> dict[str, Any]:
        completion: dict[str, Any] = {
            "id": f"chatcmpl-{self.id}",
            "object": "chat.completion",
            "created": self.created,
            "model": self.request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(self.pieces)},
                    "finish_reason": self.script.finish_reason,
                    "logprobs": None,
                }
            ],
        }
        if self.script.include_usage:
            completion["usage"] = self._usage()
        return completion

    def _wants_usage(self) -> bool:
        options = self.request.body.get("stream_options") or {}
        return bool(options.get("include_usage")) and self.script.include_usage

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> str:
        chunk: dict[str, Any] = {
            "id": f"chatcmpl-{self.id}",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.request.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if self._wants_usage():
            chunk["usage"] = None
        return f"data: {json.dumps(chunk)}\n\n"

    def stream_start(self) -> str:
        return self._chunk({"role": "assistant", "content": ""}, None)

    def stream_piece(self, piece: str) -> str:
        return self._chunk({"content": piece}, None)

    def stream_end(self) -> str:
        events = self._chunk({}, self.script.finish_reason)
        if self._wants_usage():
            usage_chunk = {
                "id": f"chatcmpl-{self.id}",
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.request.model,
                "choices": [],
                "usage": self._usage(),
            }
            events += f"data: {json.dumps(usage_chunk)}\n\n"
        return events + "data: [DONE]\n\n"


class _AnthropicWire(_Wire):
    _STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def unknown_model_message(self) -> str:
        return f"model: {self.request.model}"

    def _stop_reason(self) -> str:
        return self._STOP_REASONS.get(self.script.finish_reason, self.script.finish_reason)

    def reply(self) -> dict[str, Any]:
        return {
            "id": f"msg_{self.id}",
            "type": "message",
            "role": "assistant",
            "model": self.request.model,
            "content": [{"type": "text", "text": "".join(self.pieces)}],
            "stop_reason": self._stop_reason(),
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
        }

    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n"

    def stream_start(self) -> str:
        message: dict[str, Any] = {
            "id": f"msg_{self.id}",
            "type": "message",
            "role": "assistant",
            "model": self.request.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 1},
        }
        return (
            self._event("message_start", {"type": "message_start", "message": message})
            + self._event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            + self._event("ping", {"type": "ping"})
        )

    def stream_piece(self, piece: str) -> str:
        return self._event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )

    def stream_end(self) -> str:
        return (
            self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + self._event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop_reason(), "stop_sequence": None},
                    "usage": {"output_tokens": self.output_tokens},
                },
            )
            + self._event("message_stop", {"type": "message_stop"})
        )


T = TypeVar("T")


@contextmanager
def call_held_at_provider(
    fake: FakeLLM, script: Script, call: Callable[[], T]
) -> Iterator[list[T | Exception]]:
    """Run ``call`` in its own thread (and database connection, closed when it ends), as a
    concurrent request would, and hold it at the provider, which answers with ``script``
    once the block ends; yield the list that then holds its outcome (its result or the
    exception it raised).

    The block runs while the call waits at the provider; on leaving it the answer is let
    go and the thread joined.
    """
    gate = threading.Event()
    fake.queue(replace(script, gate=gate))
    outcomes: list[T | Exception] = []

    def run() -> None:
        try:
            outcomes.append(call())
        except Exception as error:
            outcomes.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not fake.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.requests, "the call never reached the provider"
        yield outcomes
    finally:
        gate.set()
        thread.join(30)


@pytest.fixture
def fake_llm(settings: Any) -> Iterator[FakeLLM]:
    """A started ``FakeLLM``, with both providers' settings pointed at it.

    Client timeouts are short (``LLM_REQUEST_TIMEOUT_SECONDS``) so a ``hang`` script
    fails a test in about a second, not a minute.
    """
    fake = FakeLLM().start()
    settings.OPENAI_API_KEY = "sk-test-fake"
    settings.OPENAI_BASE_URL = fake.openai_base_url
    settings.ANTHROPIC_API_KEY = "sk-ant-test-fake"
    settings.ANTHROPIC_BASE_URL = fake.anthropic_base_url
    settings.LLM_REQUEST_TIMEOUT_SECONDS = 1.0
    try:
        yield fake
    finally:
        fake.stop()
