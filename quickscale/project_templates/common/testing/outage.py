"""Cut the test database off for a while, the way an outage looks to the application."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from django.db import connection
from psycopg import sql

from common.testing.database import session_database_url

# A terminated server process has this long to exit before the outage counts as begun.
TERMINATE_WAIT_MS = 5000


@contextmanager
def database_outage() -> Iterator[None]:
    """Inside the block the test database refuses new connections and the open ones are cut.

    ``ALLOW_CONNECTIONS false`` makes PostgreSQL refuse every new connection to
    the database (superusers' too) and ``pg_terminate_backend`` ends the open
    ones, so the application's next query fails as with a stopped server: an
    ``OperationalError`` when it connects or sends the query. The server itself
    keeps running, so the rest of the test session is unaffected; other
    databases on it are untouched. The test's own connection is cut too, so use
    it only in ``django_db(transaction=True)`` tests (a test transaction cannot
    survive it). On leaving, connections are allowed again and this thread's
    connection is closed so its next query reconnects.
    """
    name = connection.settings_dict["NAME"]
    database = sql.Identifier(name)
    with psycopg.connect(_maintenance_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(database))
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [TERMINATE_WAIT_MS, name],
            )
            yield
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
    connection.close()


def _maintenance_url() -> str:
    """The session database's server, connected through its ``postgres`` database."""
    return urlunsplit(urlsplit(session_database_url())._replace(path="/postgres"))
