"""Response headers every page gets, and the 503 page while the database is down."""

import logging
import re
import sys
from collections.abc import Callable
from typing import Any
from weakref import WeakSet

from django.conf import settings
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse

from common.outage import database_unavailable, unavailable_page

logger = logging.getLogger(__name__)


# Django's technical 404 and 500 pages (DEBUG only) carry this tag near their top,
# and so do none of ours.
_TECHNICAL_PAGE_MARK = b'<meta name="robots" content="NONE,NOARCHIVE">'


def is_debug_technical_page(response: HttpResponse) -> bool:
    """Whether this is Django's technical 404 or 500 page, shown while DEBUG is on."""
    return (
        settings.DEBUG
        and response.status_code in (404, 500)
        and not response.streaming
        and response.get("Content-Type", "").startswith("text/html")
        and _TECHNICAL_PAGE_MARK in response.content[:1024]
    )


def with_inline_styles_and_scripts(policy: str) -> str:
    """The policy with 'unsafe-inline' added to its style-src and script-src."""
    return re.sub(r"\b((?:style|script)-src [^;]*)", r"\1 'unsafe-inline'", policy)


class ContentSecurityPolicyMiddleware:
    """Set ``Content-Security-Policy`` from settings.CONTENT_SECURITY_POLICY.

    Django 5.2 has no CSP support of its own (it arrives in 6.0). A view that needs
    another policy sets the header itself; this middleware leaves it alone then.

    Django's technical 404 and 500 pages, shown only while DEBUG is on, style
    themselves with a <style> block and toggle a traceback's frames with inline
    handlers: under the strict policy a developer would get them unstyled and
    inert. Those responses alone get the policy with inline styles and scripts.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        if policy and "Content-Security-Policy" not in response:
            if is_debug_technical_page(response):
                policy = with_inline_styles_and_scripts(policy)
            response["Content-Security-Policy"] = policy
        return response


class DatabaseUnavailableMiddleware:
    """Answer the branded 503 page with ``Retry-After`` while the database cannot be reached.

    A view or template that hits a database outage raises ``OperationalError``;
    ``process_exception`` turns it into the 503 page (the API answers its own
    JSON 503 before this sees it). Django turns an exception raised anywhere
    else (another middleware saving the session, the 404 page reading the user)
    into a 500 response at that layer, out of this middleware's reach; such a
    request is remembered when Django reports the exception
    (``got_request_exception``) and its 500 is replaced here. Placed inside the
    middleware that sets security headers, so the 503 gets them too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        got_request_exception.connect(_remember_outage, dispatch_uid=_remember_outage.__qualname__)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and request in _outage_requests:
            return unavailable_page()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_unavailable(exception):
            return None
        logger.warning(
            "database unavailable: answered 503",
            extra={"path": request.path, "error": str(exception).strip()},
        )
        return unavailable_page()


# Requests whose error Django turned into a 500 because the database was down.
_outage_requests: WeakSet[HttpRequest] = WeakSet()


def _remember_outage(sender: object, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Django sends got_request_exception while it handles the exception, so
    # sys.exc_info() still holds it.
    error = sys.exc_info()[1]
    if request is not None and error is not None and database_unavailable(error):
        logger.warning(
            "database unavailable: answered 503",
            extra={"path": request.path, "error": str(error).strip()},
        )
        _outage_requests.add(request)
