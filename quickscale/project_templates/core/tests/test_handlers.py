"""The ASGI handler runs Django's middleware chain synchronously, and pages still work."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from asgiref.testing import ApplicationCommunicator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

from core.handlers import SyncChainASGIHandler

calls: list[str] = []


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


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(f"row {n}\n" for n in range(3))


urlpatterns = [path("hello/", hello), path("stream/", stream)]


def asgi_get(application: Any, url: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send one GET through an ASGI application as a server does; return status, headers, body."""
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

    async def run() -> tuple[int, dict[bytes, bytes], bytes]:
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

    # In a thread of its own: the browser tests' Playwright leaves an event loop
    # running in this one, where asyncio.run() refuses to start another.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


@override_settings(
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["core.tests.test_handlers.RecordingMiddleware"],
)
def test_the_middleware_chain_runs_synchronously():
    calls.clear()
    status, _, body = asgi_get(SyncChainASGIHandler(), "/hello/?name=ada")
    assert (status, body) == (200, b"hello ada")
    assert calls == ["sync"]


@override_settings(
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["core.tests.test_handlers.RecordingMiddleware"],
)
def test_django_s_own_handler_would_run_it_asynchronously():
    # The contrast the handler exists for: every MiddlewareMixin hook in an async
    # chain is a hand-off to a worker thread and back.
    from django.core.handlers.asgi import ASGIHandler

    calls.clear()
    asgi_get(ASGIHandler(), "/hello/")
    assert calls == ["async"]


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
@override_settings(ROOT_URLCONF=__name__)
def test_streaming_responses_still_stream():
    status, _, body = asgi_get(SyncChainASGIHandler(), "/stream/")
    assert (status, body) == (200, b"row 0\nrow 1\nrow 2\n")


@pytest.mark.django_db(transaction=True)  # the view runs in another thread and connection
def test_a_project_page_is_served_with_the_full_middleware_stack():
    status, headers, body = asgi_get(SyncChainASGIHandler(), "/")
    assert status == 200
    assert b"script-src 'self'" in headers[b"content-security-policy"]
    assert headers[b"x-frame-options"] == b"DENY"
    assert b"<html" in body


@pytest.mark.django_db(transaction=True)
def test_an_unknown_page_gets_the_project_404():
    status, _, _ = asgi_get(SyncChainASGIHandler(), "/nowhere/")
    assert status == 404
