"""The test database as a URL, for tests that start a separate process on it."""

from django.db import connection


def session_database_url() -> str:
    """Return a ``postgres://`` URL for the database the test session uses."""
    # The connection's own dict: it names the test database as soon as it exists,
    # also in session-scoped fixtures that run before settings are looked at again.
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@/{db['NAME']}?host={db['HOST']}" + (
        f"&port={db['PORT']}" if db["PORT"] else ""
    )
