"""The test database as a URL, for tests that start a separate process on it."""

from django.conf import settings


def session_database_url() -> str:
    """Return a ``postgres://`` URL for the database the test session uses."""
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@/{db['NAME']}?host={db['HOST']}" + (
        f"&port={db['PORT']}" if db["PORT"] else ""
    )
