"""Request bodies are limited while they arrive, before Django reads or spools them.

The requests go through the ASGI application as uvicorn calls it (chunked
bodies arrive as many ``http.request`` messages without a Content-Length), and
each test counts how many body bytes the application pulled from the server.
"""

import asyncio
import itertools
import json
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from django.test import Client, override_settings
from django.urls import path

from api.services import api_key_create
from common.testing.asgi import asgi_request, asgi_request_blocking, http_scope, run_in_own_loop
from common.testing.process import run_python
from common.testing.server import uvicorn
from core.body_limit import BodyLimitMiddleware, BodyLimits
from core.handlers import SyncChainASGIHandler
from services.configuration import ensure_service_rows
from services.models import ServiceUsage
from users.tests.factories import make_user

KIB = 1024
MIB = 1024 * KIB
CHUNK = 16 * KIB


def pieces(total: int, size: int = CHUNK) -> Iterator[bytes]:
    """``total`` bytes in pieces of ``size``: one http.request message each."""
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


def endless() -> Iterator[bytes]:
    """A stream that goes on far past every limit.

    It ends at 64 MiB all the same: without a limit the application reads all
    it is given, and a truly endless stream would fill the disk, not fail the test.
    """
    return itertools.repeat(b"x" * CHUNK, 64 * MIB // CHUNK)


LIMIT_NAMES = (
    "BODY_LIMIT_ANONYMOUS_BYTES",
    "BODY_LIMIT_FORMS_BYTES",
    "BODY_LIMIT_WEBHOOK_BYTES",
    "BODY_LIMIT_DEFAULT_BYTES",
)
DEFAULT_LIMITS = (64 * KIB, 256 * KIB, 1 * MIB, 1 * MIB)


@pytest.fixture(autouse=True)
def _default_limits(settings: Any) -> None:
    """The tests count to the default limits, whatever the project's .env sets."""
    for name, limit in zip(LIMIT_NAMES, DEFAULT_LIMITS, strict=True):
        setattr(settings, name, limit)


def test_the_default_limits_are_the_documented_ones():
    # Settings loaded in a fresh process with the variables empty, which counts as
    # unset and keeps the project's .env from setting them.
    script = (
        "import json, core.settings as s; "
        f"print(json.dumps([getattr(s, name) for name in {LIMIT_NAMES!r}]))"
    )
    unset = dict.fromkeys(LIMIT_NAMES, "")
    result = run_python(["-c", script], {**os.environ, **unset}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == list(DEFAULT_LIMITS)
    limits = BodyLimits.from_settings()
    assert limits.service_run == settings.API_MAX_BODY_BYTES
    assert limits.profile == settings.AVATAR_MAX_BYTES + 64 * KIB


# --------------------------------------------------------------------------- refusals


def test_an_anonymous_chunked_upload_to_the_api_stops_at_the_anonymous_limit(application):
    exchange = asgi_request_blocking(
        application, "POST", "/api/services/image_metadata_extractor/run", body=pieces(4 * MIB)
    )
    assert exchange.status == 413
    assert exchange.headers[b"content-type"] == b"application/json"
    assert json.loads(exchange.body) == {
        "success": False,
        "data": None,
        "error": {
            "code": "payload_too_large",
            "message": f"The request body is too large: send at most {64 * KIB} bytes.",
            "details": {"limit": 64 * KIB},
        },
    }
    # Django got the limit and one message more, then nothing: the rest was never read.
    assert 64 * KIB < exchange.bytes_read <= 64 * KIB + CHUNK


def test_a_stream_far_past_the_limit_is_cut_off_and_answered(application):
    exchange = asgi_request_blocking(application, "POST", "/contact/", body=endless())
    assert exchange.status == 413
    assert exchange.headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert exchange.headers[b"connection"] == b"close"
    assert (
        exchange.body == f"The request body is too large: send at most {256 * KIB} bytes.".encode()
    )
    assert exchange.bytes_read <= 256 * KIB + CHUNK


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(application):
    exchange = asgi_request_blocking(
        application,
        "POST",
        "/api/text/",
        headers=[(b"content-length", str(MIB).encode()), (b"content-type", b"application/json")],
        body=pieces(MIB),
    )
    assert exchange.status == 413
    assert json.loads(exchange.body)["error"]["details"] == {"limit": 64 * KIB}
    assert exchange.bytes_read == 0


def test_the_refusal_is_logged_with_the_route_and_sizes(application, caplog):
    with caplog.at_level("WARNING", logger="core.body_limit"):
        asgi_request_blocking(application, "PUT", "/anything/", body=pieces(MIB))
    (record,) = caplog.records
    fields = vars(record)
    assert (fields["method"], fields["path"], fields["limit"]) == ("PUT", "/anything/", 64 * KIB)
    assert 64 * KIB < fields["received"] <= 64 * KIB + CHUNK
    assert fields["declared"] is None


# --------------------------------------------------------------------------- what passes


def test_a_body_within_the_limit_reaches_django_whole(application):
    exchange = asgi_request_blocking(
        application, "POST", "/api/services/image_metadata_extractor/run", body=pieces(64 * KIB)
    )
    # The API's own answer to a call without a key: Django read the body and routed it.
    assert exchange.status == 401
    assert json.loads(exchange.body)["error"]["code"] == "missing_api_key"
    assert exchange.bytes_read == 64 * KIB


def test_the_webhook_takes_up_to_one_mebibyte(application):
    accepted = asgi_request_blocking(application, "POST", "/stripe/webhook/", body=pieces(MIB))
    assert (accepted.status, accepted.body) == (400, b"Invalid signature.")  # the view read it
    assert accepted.bytes_read == MIB

    refused = asgi_request_blocking(application, "POST", "/stripe/webhook/", body=pieces(MIB + 1))
    assert refused.status == 413
    assert MIB < refused.bytes_read <= MIB + CHUNK


CSRF_TOKEN = "a" * 32


def profile_upload(size: int) -> tuple[bytes, list[bytes]]:
    """A multipart profile form of exactly ``size`` bytes: its content type and its pieces."""
    boundary = "limit-test-boundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="avatar"; filename="me.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    chunks = [body[start : start + CHUNK] for start in range(0, len(body), CHUNK)]
    return f"multipart/form-data; boundary={boundary}".encode(), chunks


@pytest.mark.django_db(transaction=True)  # the view runs in another thread and connection
def test_a_signed_in_profile_upload_gets_the_avatar_limit_plus_the_form(application):
    client = Client()
    client.force_login(make_user())
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    cookie = f"{settings.SESSION_COOKIE_NAME}={session}; csrftoken={CSRF_TOKEN}".encode()
    limit = settings.AVATAR_MAX_BYTES + 64 * KIB

    content_type, body = profile_upload(limit)
    accepted = asgi_request_blocking(
        application,
        "POST",
        "/accounts/profile/",
        headers=[
            (b"cookie", cookie),
            (b"x-csrftoken", CSRF_TOKEN.encode()),
            (b"content-type", content_type),
            (b"content-length", str(limit).encode()),
        ],
        body=body,
    )
    assert accepted.status == 200  # the form, shown again: that file is no image
    assert b"avatar" in accepted.body
    assert accepted.bytes_read == limit

    content_type, body = profile_upload(limit + 1)
    refused = asgi_request_blocking(
        application,
        "POST",
        "/accounts/profile/",
        headers=[(b"cookie", cookie), (b"content-type", content_type)],
        body=body,
    )
    assert refused.status == 413
    assert limit < refused.bytes_read <= limit + CHUNK

    # Without the session cookie the same upload is an anonymous one.
    _, body = profile_upload(limit)
    anonymous = asgi_request_blocking(
        application,
        "POST",
        "/accounts/profile/",
        headers=[(b"content-type", content_type)],
        body=body,
    )
    assert anonymous.status == 413
    assert anonymous.bytes_read <= 64 * KIB + CHUNK


@pytest.mark.django_db(transaction=True)  # the view runs in another thread and connection
def test_django_does_not_refuse_a_json_body_its_route_allows(application):
    # 3 MB is within API_MAX_BODY_BYTES but above Django's default in-memory limit
    # (2.5 MB), which, left at its default, refuses the body with a 413 before the
    # API reads it.
    ensure_service_rows()
    key = api_key_create(make_user(), name="test")[1]
    payload = json.dumps({"operation": "count", "text": "word " * 600_000}).encode()
    exchange = asgi_request_blocking(
        application,
        "POST",
        "/api/text/",
        headers=[
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        body=[payload[start : start + CHUNK] for start in range(0, len(payload), CHUNK)],
    )
    assert exchange.bytes_read == len(payload)
    assert json.loads(exchange.body)["error"]["code"] == "invalid_input"  # the service's answer


@pytest.mark.django_db(transaction=True)  # the view runs in another thread and connection
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_keyed_api_run_over_api_max_body_bytes_is_413_and_runs_nothing(
    application, settings, declared
):
    settings.API_MAX_BODY_BYTES = 256 * KIB
    limited = BodyLimitMiddleware(application.app)  # the limits of this test's settings
    ensure_service_rows()
    key = api_key_create(make_user(), name="test")[1]
    payload = json.dumps({"input": {"text": "word " * (100 * KIB)}}).encode()
    headers = [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json")]
    if declared:
        headers.append((b"content-length", str(len(payload)).encode()))
    exchange = asgi_request_blocking(
        limited,
        "POST",
        "/api/services/demo_free_service/run",
        headers=headers,
        body=[payload[start : start + CHUNK] for start in range(0, len(payload), CHUNK)],
    )
    assert exchange.status == 413
    assert json.loads(exchange.body)["error"] == {
        "code": "payload_too_large",
        "message": f"The request body is too large: send at most {256 * KIB} bytes.",
        "details": {"limit": 256 * KIB},
    }
    assert exchange.bytes_read <= (0 if declared else 256 * KIB + CHUNK)
    assert not ServiceUsage.objects.exists()


# --------------------------------------------------------------------------- routes


ANONYMOUS: list[tuple[bytes, bytes]] = []
SESSION = [(b"cookie", b"csrftoken=abc; sessionid=anything")]
API_KEY = [(b"authorization", b"Bearer qs_whatever")]


@pytest.mark.parametrize(
    ("url", "headers", "limit"),
    [
        ("/accounts/signup/", ANONYMOUS, "forms"),
        ("/accounts/login/", ANONYMOUS, "forms"),
        ("/contact/", ANONYMOUS, "forms"),
        ("/accounts/password/reset/", ANONYMOUS, "anonymous"),
        ("/api/services/image_metadata_extractor/run", ANONYMOUS, "anonymous"),
        ("/accounts/profile/", ANONYMOUS, "anonymous"),
        ("/", [(b"cookie", b"csrftoken=abc; theme=dark")], "anonymous"),
        ("/stripe/webhook/", ANONYMOUS, "webhook"),
        ("/stripe/webhook/", SESSION, "webhook"),
        ("/api/services/image_metadata_extractor/run", API_KEY, "service_run"),
        ("/api/text/", API_KEY, "service_run"),
        ("/services/image_metadata_extractor/", SESSION, "service_run"),
        ("/api/services/a/b/run", API_KEY, "default"),
        ("/accounts/profile/", SESSION, "profile"),
        ("/accounts/settings/", SESSION, "default"),
        ("/contact/", SESSION, "default"),
        ("/api/usage/", API_KEY, "default"),
    ],
)
def test_each_route_gets_its_limit(url, headers, limit):
    # Distinct values, so each route's answer names the limit it got.
    limits = BodyLimits(anonymous=1, forms=2, webhook=3, service_run=4, profile=5, default=6)
    middleware = BodyLimitMiddleware(SyncChainASGIHandler(), limits)
    assert middleware.limit_for(http_scope("POST", url, headers)) == getattr(limits, limit)


# --------------------------------------------------------------------------- pass-through


async def rows() -> AsyncIterator[bytes]:
    for n in range(3):
        yield f"row {n}\n".encode()
        await asyncio.sleep(0)


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(rows())


urlpatterns = [path("stream/", stream)]


@override_settings(ROOT_URLCONF=__name__)
def test_a_streaming_response_arrives_message_by_message(application):
    exchange = asgi_request_blocking(application, "GET", "/stream/")
    assert exchange.status == 200
    assert [chunk for chunk in exchange.body_messages if chunk] == [
        b"row 0\n",
        b"row 1\n",
        b"row 2\n",
    ]


def test_each_response_message_is_passed_on_before_the_app_sends_the_next():
    delivered: list[bytes] = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(3):
            await send({"type": "http.response.body", "body": b"%d" % n, "more_body": True})
            assert delivered[-1] == b"%d" % n  # already with the client
        await send({"type": "http.response.body", "body": b""})

    async def client() -> None:
        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            if message["type"] == "http.response.body":
                delivered.append(message["body"])

        await BodyLimitMiddleware(app)(http_scope("GET", "/"), receive, send)

    run_in_own_loop(client())
    assert delivered == [b"0", b"1", b"2", b""]


def test_other_connections_reach_the_app_untouched():
    seen: list[Any] = []

    async def app(scope, receive, send):
        seen.extend([scope, receive, send])

    async def receive():
        return {"type": "lifespan.startup"}

    async def send(message):
        pass

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    run_in_own_loop(BodyLimitMiddleware(app)(scope, receive, send))
    assert seen == [scope, receive, send]
    assert seen[1] is receive and seen[2] is send


ONE_CHUNK = BodyLimits(
    anonymous=CHUNK, forms=CHUNK, webhook=CHUNK, service_run=CHUNK, profile=CHUNK, default=CHUNK
)


def test_an_app_that_ignores_the_disconnect_gets_nothing_more_and_cannot_answer_twice():
    reads: list[int] = []

    async def stubborn(scope, receive, send):
        # Reads on after the disconnect, then tries to answer anyway.
        for _ in range(5):
            reads.append(len((await receive()).get("body", b"")))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = BodyLimitMiddleware(stubborn, ONE_CHUNK)
    exchange = run_in_own_loop(asgi_request(middleware, "POST", "/", body=endless()))
    assert exchange.status == 413  # the helper fails on a second response start
    assert exchange.body == f"The request body is too large: send at most {CHUNK} bytes.".encode()
    assert exchange.bytes_read == 2 * CHUNK  # the server was asked twice, never again
    assert reads == [CHUNK, 0, 0, 0, 0]  # then only disconnects


def test_an_app_that_answers_while_reading_keeps_its_own_answer_past_the_limit():
    reads: list[str] = []

    async def echo(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (message := await receive())["type"] == "http.request":
            reads.append(message["type"])
            await send({"type": "http.response.body", "body": b".", "more_body": True})
        reads.append(message["type"])
        await send({"type": "http.response.body", "body": b"end"})

    middleware = BodyLimitMiddleware(echo, ONE_CHUNK)
    exchange = run_in_own_loop(asgi_request(middleware, "POST", "/", body=endless()))
    # Too late for a 413: the app is told the client left and ends its answer.
    assert (exchange.status, exchange.body) == (200, b".end")
    assert reads == ["http.request", "http.disconnect"]


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize("name", ["BODY_LIMIT_ANONYMOUS_BYTES", "BODY_LIMIT_WEBHOOK_BYTES"])
def test_a_limit_that_is_not_positive_is_refused_at_start_up(name):
    result = run_python(["-c", "import core.settings"], {**os.environ, name: "0"}, timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name} must be a positive number of bytes" in result.stderr


# --------------------------------------------------------------------------- a real server


def stream_chunked(port: int, target: str, cap: int) -> tuple[bytes, int]:
    """POST up to ``cap`` bytes chunked while reading the answer; (answer, bytes sent)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = 0

    def send_body() -> None:
        nonlocal sent
        piece = b"%x\r\n%s\r\n" % (64 * KIB, b"x" * 64 * KIB)
        try:
            connection.sendall(
                f"POST {target} HTTP/1.1\r\nHost: localhost\r\n"
                "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n".encode()
            )
            while sent < cap:
                connection.sendall(piece)
                sent += 64 * KIB
            connection.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: the point of the test

    sender = threading.Thread(target=send_body)
    sender.start()
    answer = b""
    try:
        while chunk := connection.recv(65536):
            answer += chunk
    except OSError:
        pass
    sender.join(10)
    connection.close()
    return answer, sent


def test_uvicorn_serving_the_project_refuses_an_anonymous_stream_and_hangs_up(tmp_path):
    # The request is refused before Django runs, so the server needs no database.
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DJANGO_"))}
    environ["LOG_LEVEL"] = "ERROR"
    with uvicorn(environ, tmp_path / "uvicorn.log") as (port, _):
        answer, sent = stream_chunked(port, "/api/services/image_metadata_extractor/run", 64 * MIB)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    # The server hung up instead of draining the rest: the client could not send
    # it all (what it did send sat in the two sockets' buffers).
    assert sent < 32 * MIB
