"""Send requests through an ASGI application the way a server such as uvicorn does."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.testing import ApplicationCommunicator

T = TypeVar("T")
Response = tuple[int, dict[bytes, bytes], bytes]  # status, headers (lower-case names), body


async def asgi_get(application: Any, url: str) -> Response:
    """Request ``url`` and wait until the application has finished, as a server does.

    Waiting for the end matters: only then has Django sent ``request_finished``,
    which closes the request's database connection (or hands it back to the pool).
    """
    scope = http_scope("GET", url)
    call: Any = ApplicationCommunicator(application, scope)  # type: ignore[no-untyped-call]
    await call.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await call.receive_output(30)
    body = b""
    while True:
        message = await call.receive_output(30)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await call.wait(30)
    headers = {name.lower(): value for name, value in start["headers"]}
    return start["status"], headers, body


def run_in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to the end from synchronous code (a test), on an event loop of its own.

    In a thread of its own: the browser tests' Playwright leaves an event loop
    running in the main thread, where asyncio.run() refuses to start another.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def asgi_get_blocking(application: Any, url: str) -> Response:
    """``asgi_get`` from synchronous code (see ``run_in_own_loop``)."""
    return run_in_own_loop(asgi_get(application, url))


def http_scope(
    method: str, url: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> dict[str, Any]:
    """The scope uvicorn gives an application for ``method url`` with these extra headers."""
    route, _, query = url.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 8000),
    }


@dataclass
class Exchange:
    """What a client saw of one request, and how much of its body the application read."""

    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body_messages: list[bytes] = field(default_factory=list)  # one item per response message
    bytes_read: int = 0  # request body bytes the application pulled with receive()

    @property
    def body(self) -> bytes:
        return b"".join(self.body_messages)


async def asgi_request(
    application: Any,
    method: str,
    url: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: Iterable[bytes] = (),
    timeout: float = 30,
) -> Exchange:
    """Send ``method url`` with a body arriving piece by piece, as a chunked upload does.

    Each piece of ``body`` is one ``http.request`` message, handed over only when
    the application asks for it (``body`` may be a generator, even an endless
    one); no Content-Length is sent unless ``headers`` has one. After the body,
    ``receive`` waits for the response to end and then reports the client gone,
    as uvicorn does.
    """
    exchange = Exchange()
    pieces = iter(body)
    upcoming = next(pieces, None)
    body_done = False
    response_done = asyncio.Event()

    async def receive() -> Mapping[str, Any]:
        nonlocal upcoming, body_done
        if body_done:
            await response_done.wait()
            return {"type": "http.disconnect"}
        piece, upcoming = upcoming or b"", next(pieces, None)
        body_done = upcoming is None
        exchange.bytes_read += len(piece)
        return {"type": "http.request", "body": piece, "more_body": not body_done}

    async def send(message: Mapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert not exchange.status, "the application started a second response"
            exchange.status = message["status"]
            exchange.headers = {name.lower(): value for name, value in message["headers"]}
        elif message["type"] == "http.response.body":
            assert exchange.status, "response body before its start"
            assert not response_done.is_set(), "response body after the response ended"
            exchange.body_messages.append(message.get("body", b""))
            if not message.get("more_body"):
                response_done.set()

    await asyncio.wait_for(application(http_scope(method, url, headers), receive, send), timeout)
    assert response_done.is_set(), "the application returned without a complete response"
    return exchange


def asgi_request_blocking(application: Any, method: str, url: str, **kwargs: Any) -> Exchange:
    """``asgi_request`` from synchronous code (see ``run_in_own_loop``)."""
    return run_in_own_loop(asgi_request(application, method, url, **kwargs))
