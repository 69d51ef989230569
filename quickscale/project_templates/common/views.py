"""Operational endpoints, and the answer to addresses no resource can have."""

import logging
from functools import cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET, require_safe

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Report whether the app can reach its database (200 when yes, 503 when not)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        logger.warning("health check: database unavailable", extra={"error": str(error)})
        return JsonResponse({"status": "unavailable", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@never_cache
@require_GET
def live(request: HttpRequest) -> HttpResponse:
    """Answer 200 while this process serves requests (a liveness probe).

    It asks nothing of the database or any other service: an outage elsewhere
    must take a process out of rotation (``health``), not get it restarted.
    """
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


@cache
def _favicon_bytes() -> bytes:
    found = finders.find("favicon.ico")
    if not found:
        raise Http404("No favicon.ico among the static files.")
    return Path(str(found)).read_bytes()


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """Answer /favicon.ico, which browsers and crawlers ask for whatever the page links.

    Pages link static/favicon.svg; this serves static/favicon.ico (the same icon as
    a bitmap) at the root, where a 404 would otherwise fill the logs.
    """
    return HttpResponse(_favicon_bytes(), content_type="image/x-icon")


def nul_byte_not_found(request: HttpRequest) -> HttpResponse:
    """Answer 404 (the site's usual page) for an address holding a NUL byte."""
    raise Http404("No address holds a NUL byte.")
