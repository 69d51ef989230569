"""The ASGI handler runs the middleware chain synchronously, and the rest as Django does.

``SyncChainASGIHandler`` overrides methods of Django's handler that are not
documented API. The tests below fail when what it relies on changes in Django:
the methods' signatures, ``load_middleware`` building a sync chain, Django's ASGI
code calling ``get_response_async`` for each request, and ``get_response`` doing
what the async version does (closing the request, logging error responses).
"""

import asyncio
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth import get_user_model
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotFound,
    StreamingHttpResponse,
)
from django.test import override_settings
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

from common.testing.asgi import asgi_get_blocking, http_scope, run_in_own_loop
from core.handlers import SyncChainASGIHandler

calls: list[str] = []
# Set by the test once the first streamed chunk has reached the client.
first_chunk_seen = threading.Event()


class RecordingMiddleware(MiddlewareMixin):
    """Says whether Django called it as part of a sync or an async chain."""

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            calls.append("async")
            return self.__acall__(request)
        calls.append("sync")
        return super().__call__(request)


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"hello {request.GET.get('name', '')}")


def gone(request: HttpRequest) -> HttpResponseNotFound:
    return HttpResponseNotFound("gone")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(f"row {n}\n" for n in range(3))


async def async_users(request: HttpRequest) -> HttpResponse:
    """An async view that uses Django's async ORM (a thread-sensitive call inside it)."""
    count = await get_user_model().objects.acount()
    return HttpResponse(f"{count} users")


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Streams like a model answering token by token: the second chunk waits for the client."""

    async def tokens() -> AsyncIterator[bytes]:
        yield b"first "
        for _ in range(1000):  # 10 s at most
            if first_chunk_seen.is_set():
                break
            await asyncio.sleep(0.01)
        yield b"second"

    return StreamingHttpResponse(tokens(), content_type="text/plain")


urlpatterns = [
    path("hello/", hello),
    path("gone/", gone),
    path("stream/", stream),
    path("async/users/", async_users),
    path("async/stream/", async_stream),
]


@pytest.mark.parametrize(
    ("method", "parameters", "is_coroutine"),
    [
        ("load_middleware", ["self", "is_async"], False),
        ("get_response", ["self", "request"], False),
        ("get_response_async", ["self", "request"], True),
    ],
)
def test_django_s_handler_still_has_the_methods_this_one_overrides_and_calls(
    method: str, parameters: list[str], is_coroutine: bool
):
    original = getattr(ASGIHandler, method)
    assert list(inspect.signature(original).parameters) == parameters
    assert inspect.iscoroutinefunction(original) is is_coroutine
    assert getattr(BaseHandler, method) is original  # still the base handler's own


@override_settings(ROOT_URLCONF=__name__)
def test_django_s_asgi_code_asks_get_response_async_for_every_response():
    asked: list[str] = []

    class Spying(SyncChainASGIHandler):
        async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
            asked.append(request.path)
            return await super().get_response_async(request)

    status, _, body = asgi_get_blocking(Spying(), "/hello/?name=ada")

    assert (status, body) == (200, b"hello ada")
    assert asked == ["/hello/"]


@override_settings(
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["core.tests.test_handlers.RecordingMiddleware"],
)
def test_the_middleware_chain_runs_synchronously():
    calls.clear()
    status, _, body = asgi_get_blocking(SyncChainASGIHandler(), "/hello/?name=ada")
    assert (status, body) == (200, b"hello ada")
    assert calls == ["sync"]


@override_settings(
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["core.tests.test_handlers.RecordingMiddleware"],
)
def test_django_s_own_handler_would_run_it_asynchronously():
    # The contrast the handler exists for: every MiddlewareMixin hook in an async
    # chain is a hand-off to a worker thread and back.
    calls.clear()
    asgi_get_blocking(ASGIHandler(), "/hello/")
    assert calls == ["async"]


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
@override_settings(ROOT_URLCONF=__name__)
def test_streaming_responses_still_stream():
    status, _, body = asgi_get_blocking(SyncChainASGIHandler(), "/stream/")
    assert (status, body) == (200, b"row 0\nrow 1\nrow 2\n")


@pytest.mark.django_db(transaction=True)  # the view runs in another thread and connection
@override_settings(ROOT_URLCONF=__name__)
def test_an_async_view_runs_and_can_use_the_async_orm():
    get_user_model().objects.create_user(email="one@example.com", password="x")

    status, _, body = asgi_get_blocking(SyncChainASGIHandler(), "/async/users/")

    assert (status, body) == (200, b"1 users")


@pytest.fixture
def stream_gate() -> Iterator[None]:
    first_chunk_seen.clear()
    yield
    first_chunk_seen.set()  # never leave the view's generator waiting


@override_settings(ROOT_URLCONF=__name__)
def test_an_async_streaming_view_reaches_the_client_chunk_by_chunk(stream_gate: None):
    """The first chunk arrives while the view's generator still waits for the client:
    nothing between the view and the server buffers the response."""

    async def exchange() -> list[bytes]:
        call: Any = ApplicationCommunicator(  # type: ignore[no-untyped-call]
            SyncChainASGIHandler(), http_scope("GET", "/async/stream/")
        )
        await call.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await call.receive_output(5)
        assert start["status"] == 200
        chunks = [(await call.receive_output(5)).get("body", b"")]
        first_chunk_seen.set()
        while True:
            message = await call.receive_output(5)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await call.wait(5)
        return chunks

    chunks = run_in_own_loop(exchange())

    assert chunks[0] == b"first "
    assert b"".join(chunks) == b"first second"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@override_settings(ROOT_URLCONF=__name__)
def test_an_error_response_is_logged_as_django_logs_it():
    records = _Records()
    logger = logging.getLogger("django.request")
    logger.addHandler(records)
    try:
        status, _, _ = asgi_get_blocking(SyncChainASGIHandler(), "/gone/")
    finally:
        logger.removeHandler(records)

    assert status == 404
    assert [(r.levelname, r.getMessage()) for r in records.records] == [
        ("WARNING", "Not Found: /gone/")
    ]


@pytest.mark.django_db(transaction=True)  # the view runs in another thread and connection
def test_a_project_page_is_served_with_the_full_middleware_stack():
    status, headers, body = asgi_get_blocking(SyncChainASGIHandler(), "/")
    assert status == 200
    assert b"script-src 'self'" in headers[b"content-security-policy"]
    assert headers[b"x-frame-options"] == b"DENY"
    assert b"<html" in body


@pytest.mark.django_db(transaction=True)
def test_an_unknown_page_gets_the_project_404():
    status, _, _ = asgi_get_blocking(SyncChainASGIHandler(), "/nowhere/")
    assert status == 404
