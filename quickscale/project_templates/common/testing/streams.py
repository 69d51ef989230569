"""Read a streamed response through an ASGI application as a client would, and leave when told.

``read_stream`` sends one request and collects the response's body messages as
they are sent, calling ``on_chunk`` for each (a test looks at the far end then:
what the fake provider had sent when the first token arrived). The client goes
away (``http.disconnect``, as uvicorn reports a closed connection) at once, or
after the body messages ``leave_after`` says, or when the response ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.testing.asgi import http_scope, run_in_own_loop


@dataclass
class StreamRead:
    """What the client saw: status, headers, each body message, and whether it left early."""

    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    complete: bool = False  # the response ended before the client left

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


async def read_stream(
    application: Any,
    method: str,
    url: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    leave_at_once: bool = False,
    leave_after: Callable[[StreamRead], bool] | None = None,
    on_chunk: Callable[[StreamRead, bytes], None] | None = None,
    timeout: float = 30,
) -> StreamRead:
    """Request ``method url`` and read the streamed answer (see the module docstring).

    ``leave_after(read)`` is asked after each body message; True: the client
    disconnects then. The call returns once the application has returned.
    """
    read = StreamRead()
    body_sent = False
    gone = asyncio.Event()
    if leave_at_once:
        gone.set()

    async def receive() -> Mapping[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        if gone.is_set() and not read.complete and message["type"] == "http.response.body":
            return  # uvicorn drops what is sent to a client that went away
        if message["type"] == "http.response.start":
            read.status = message["status"]
            read.headers = {name.lower(): value for name, value in message["headers"]}
            return
        chunk = message.get("body", b"")
        if chunk:
            read.chunks.append(chunk)
            if on_chunk is not None:
                on_chunk(read, chunk)
        if not message.get("more_body"):
            read.complete = True
            gone.set()
        elif leave_after is not None and leave_after(read):
            gone.set()

    scope = http_scope(method, url, headers)
    await asyncio.wait_for(application(scope, receive, send), timeout)
    return read


def read_stream_blocking(application: Any, method: str, url: str, **kwargs: Any) -> StreamRead:
    """``read_stream`` from synchronous code (see ``common.testing.asgi.run_in_own_loop``)."""
    return run_in_own_loop(read_stream(application, method, url, **kwargs))


def sse_data(read: StreamRead) -> list[str]:
    """The ``data:`` payloads of a server-sent event stream, in order."""
    events = read.body.decode().split("\n\n")
    payloads = []
    for event in events:
        lines = [line[len("data: ") :] for line in event.split("\n") if line.startswith("data: ")]
        if lines:
            payloads.append("\n".join(lines))
    return payloads


def sse_events(read: StreamRead) -> list[tuple[str, str]]:
    """``(event name, data)`` of each server-sent event (name "message" when unnamed)."""
    found = []
    for event in read.body.decode().split("\n\n"):
        name, data = "message", []
        for line in event.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: ") or line == "data:":
                data.append(line[len("data: ") :])
        if data:
            found.append((name, "\n".join(data)))
    return found
