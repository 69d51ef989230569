"""Send a GET through an ASGI application the way a server such as uvicorn does."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.testing import ApplicationCommunicator

Response = tuple[int, dict[bytes, bytes], bytes]  # status, headers (lower-case names), body


async def asgi_get(application: Any, url: str) -> Response:
    """Request ``url`` and wait until the application has finished, as a server does.

    Waiting for the end matters: only then has Django sent ``request_finished``,
    which closes the request's database connection (or hands it back to the pool).
    """
    route, _, query = url.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 8000),
    }
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


def asgi_get_blocking(application: Any, url: str) -> Response:
    """``asgi_get`` from synchronous code (a test), on an event loop of its own.

    In a thread of its own: the browser tests' Playwright leaves an event loop
    running in the main thread, where asyncio.run() refuses to start another.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asgi_get(application, url)).result()
