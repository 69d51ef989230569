"""A limit on every request body, enforced while the body arrives.

Django's ASGI handler reads the whole body (into memory, then a temporary file)
before any middleware, URL routing or authentication runs, so a limit checked
inside Django comes too late: an endless chunked upload to any URL fills the
disk first. This ASGI middleware sits around the Django application (see
``core/asgi.py``) and counts body bytes as Django pulls them from the server,
chunked or not. A declared ``Content-Length`` over the route's limit is refused
before any of the body is read; a stream that passes the limit is answered 413
at that moment, and Django is told the client went away, so it drops the
request without answering and never sees another byte.

Limits depend on the path and headers only (settings, read once):

- the Stripe webhook: ``BODY_LIMIT_WEBHOOK_BYTES``;
- without a session cookie or an ``Authorization`` header (anonymous): the
  sign-up, login and contact forms ``BODY_LIMIT_FORMS_BYTES``, everything else
  ``BODY_LIMIT_ANONYMOUS_BYTES``;
- with either: service runs (``/api/services/<name>/run``, ``/api/text/`` and the
  service pages) ``API_MAX_BODY_BYTES``, the profile ``BODY_LIMIT_PROFILE_BYTES``
  (the avatar plus the form's other fields), everything else
  ``BODY_LIMIT_DEFAULT_BYTES``.

Presence of a credential is enough: authentication comes later, inside Django,
so a forged cookie gets at most the largest of these limits.

Anything that is not an HTTP request (lifespan, websockets) and every response,
streaming or not, passes through untouched, message by message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http.cookie import parse_cookie
from django.urls import NoReverseMatch, get_script_prefix, reverse

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DISCONNECT: Message = {"type": "http.disconnect"}
# Stands in for a path parameter when a route's pattern is built by reversing its name.
_PLACEHOLDER = "__param__"


@dataclass(frozen=True)
class BodyLimits:
    """The largest body, in bytes, each kind of request may send."""

    anonymous: int
    forms: int
    webhook: int
    service_run: int
    profile: int
    default: int

    @classmethod
    def from_settings(cls) -> BodyLimits:
        return cls(
            anonymous=settings.BODY_LIMIT_ANONYMOUS_BYTES,
            forms=settings.BODY_LIMIT_FORMS_BYTES,
            webhook=settings.BODY_LIMIT_WEBHOOK_BYTES,
            service_run=settings.API_MAX_BODY_BYTES,
            profile=settings.BODY_LIMIT_PROFILE_BYTES,
            default=settings.BODY_LIMIT_DEFAULT_BYTES,
        )

    @property
    def smallest(self) -> int:
        return min(
            self.anonymous, self.forms, self.webhook, self.service_run, self.profile, self.default
        )


def _path(name: str, kwargs: dict[str, str] | None = None) -> str | None:
    """The path of URL ``name`` from the site's root, or None when the project has no such URL."""
    try:
        url = reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return None
    return "/" + url.removeprefix(get_script_prefix())


def _pattern(name: str, parameter: str | None = None) -> re.Pattern[str] | None:
    """A regex matching URL ``name`` (for any value of its one path ``parameter``)."""
    if parameter is None:
        url = _path(name)
        return None if url is None else re.compile(re.escape(url))
    url = _path(name, {parameter: _PLACEHOLDER})
    if url is None:
        return None
    before, _, after = url.partition(_PLACEHOLDER)
    return re.compile(f"{re.escape(before)}[^/]+{re.escape(after)}")


@dataclass(frozen=True)
class Routes:
    """The paths that get their own limit, found by reversing their URL names."""

    webhook: str | None
    forms: frozenset[str]
    profile: str | None
    service_runs: tuple[re.Pattern[str], ...]
    api_root: str

    @classmethod
    def resolve(cls) -> Routes:
        # A project that removes one of these pages simply loses its special limit.
        forms = (_path("account_signup"), _path("account_login"), _path("public:contact"))
        runs = (
            _pattern("api:run_service", "name"),
            _pattern("api:process_text"),
            _pattern("services:detail", "name"),
        )
        return cls(
            webhook=_path("stripe_manager:webhook"),
            forms=frozenset(path for path in forms if path is not None),
            profile=_path("users:profile"),
            service_runs=tuple(pattern for pattern in runs if pattern is not None),
            api_root=_path("api:api-root") or "/api/",
        )

    def limit(self, limits: BodyLimits, path: str, credentials: bool) -> int:
        """The body limit of a request to ``path``, signed in or not."""
        if path == self.webhook:
            return limits.webhook
        if not credentials:
            return limits.forms if path in self.forms else limits.anonymous
        if any(pattern.fullmatch(path) for pattern in self.service_runs):
            return limits.service_run
        if path == self.profile:
            return limits.profile
        return limits.default


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The value of header ``name`` (several joined as one list), None when absent."""
    values = [value for key, value in scope.get("headers", ()) if key.lower() == name]
    if not values:
        return None
    return b"; ".join(values) if name == b"cookie" else b", ".join(values)


def _declared_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        # The server refuses a malformed length itself; the byte count still applies.
        return None


class BodyLimitMiddleware:
    """Answer 413 as soon as a request body passes its route's limit (ASGI 3)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits | None = None) -> None:
        self.app = app
        self.limits = limits or BodyLimits.from_settings()
        self.session_cookie = settings.SESSION_COOKIE_NAME
        self._routes: Routes | None = None

    @property
    def routes(self) -> Routes:
        # Resolved at first use: the URLconf is loaded by then, and reversing once
        # per process keeps each request to a few comparisons.
        if self._routes is None:
            self._routes = Routes.resolve()
        return self._routes

    def has_credentials(self, scope: Scope) -> bool:
        """Whether the request carries an Authorization header or a session cookie."""
        if _header(scope, b"authorization") is not None:
            return True
        cookies = _header(scope, b"cookie")
        return cookies is not None and self.session_cookie in parse_cookie(
            cookies.decode("latin-1")
        )

    def limit_for(self, scope: Scope) -> int:
        """The body limit of the request ``scope`` describes."""
        return self.routes.limit(self.limits, _path_info(scope), self.has_credentials(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Most bodies are within every route's limit; only a larger one needs the route.
        limit: int | None = None
        declared = _declared_length(scope)
        if declared is not None and declared > self.limits.smallest:
            limit = self.limit_for(scope)
            if declared > limit:
                # Nothing has been read (a client that sent "Expect: 100-continue"
                # is never told to go on).
                _log_refusal(scope, limit, received=0, declared=declared)
                await _send_too_large(scope, send, limit, self.routes.api_root)
                return

        received = 0
        cut_off = False  # the app gets no more of the body
        answered = False  # the 413 went out: nothing the app sends may follow it
        response_started = False

        async def limited_receive() -> Message:
            nonlocal limit, received, cut_off, answered
            if cut_off:
                return DISCONNECT
            message = await receive()
            if message["type"] != "http.request":
                return message
            received += len(message.get("body", b""))
            if received <= self.limits.smallest:
                return message
            if limit is None:
                limit = self.limit_for(scope)
            if received <= limit:
                return message
            # Over the limit: answer now and tell the app the client left, so
            # Django's read_body stops (RequestAborted) and sends nothing itself.
            cut_off = True
            _log_refusal(scope, limit, received=received, declared=declared)
            if not response_started:
                answered = True
                await _send_too_large(scope, send, limit, self.routes.api_root)
            return DISCONNECT

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if answered:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


def _path_info(scope: Scope) -> str:
    """The request path below the application's mount point, as Django routes it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path.removeprefix(root)


def _log_refusal(scope: Scope, limit: int, *, received: int, declared: int | None) -> None:
    logger.warning(
        "request body over the limit",
        extra={
            "method": scope.get("method"),
            "path": scope.get("path"),
            "limit": limit,
            "received": received,
            "declared": declared,
        },
    )


async def _send_too_large(scope: Scope, send: Send, limit: int, api_root: str) -> None:
    """Answer 413: the API's JSON envelope under its root, a line of text elsewhere."""
    message = f"The request body is too large: send at most {limit} bytes."
    if _path_info(scope).startswith(api_root):
        # The shape of every API error (api.errors.envelope); core stays free of the api app.
        error = {"code": "payload_too_large", "message": message, "details": {"limit": limit}}
        body = json.dumps({"success": False, "data": None, "error": error}).encode()
        content_type = b"application/json"
    else:
        body = message.encode()
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
                # The rest of the body is never read: the server closes the
                # connection after this answer instead of draining it.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
