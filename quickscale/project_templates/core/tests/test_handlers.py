"""The ASGI handler runs Django's middleware chain synchronously, and pages still work."""

from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

from common.testing.asgi import asgi_get_blocking
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
    from django.core.handlers.asgi import ASGIHandler

    calls.clear()
    asgi_get_blocking(ASGIHandler(), "/hello/")
    assert calls == ["async"]


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
@override_settings(ROOT_URLCONF=__name__)
def test_streaming_responses_still_stream():
    status, _, body = asgi_get_blocking(SyncChainASGIHandler(), "/stream/")
    assert (status, body) == (200, b"row 0\nrow 1\nrow 2\n")


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
