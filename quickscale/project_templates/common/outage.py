"""A database that cannot be reached: which errors say so, and the 503 page for people.

The API answers these errors with its own 503 envelope (``api/errors.py``);
pages get ``unavailable_page()`` through ``common.middleware``. Either way the
client is told to retry after ``RETRY_AFTER_SECONDS``, instead of getting a 500
that says our code is broken.
"""

from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string

# A server that is down, restarting or refusing connections raises OperationalError;
# so does the web server's connection pool after DB_POOL_TIMEOUT (Django wraps
# psycopg_pool's PoolTimeout). InterfaceError: a connection that was already closed.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
# About one database restart, or one wait for a pooled connection.
RETRY_AFTER_SECONDS = 5


def database_unavailable(error: BaseException) -> bool:
    """Return True when ``error`` means the database cannot be reached right now."""
    return isinstance(error, DATABASE_UNAVAILABLE)


def unavailable_page() -> HttpResponse:
    """The branded 503 page with ``Retry-After``.

    Rendered without the request, so no context processor runs: they read the
    session, the user and the balance, all from the database that is down.
    """
    content = render_to_string("503.html", {"PROJECT_NAME": settings.PROJECT_NAME})
    response = HttpResponse(content, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
