"""A real Redis server for the tests of what runs on Redis when REDIS_URL is set.

The server is ``TEST_REDIS_URL`` (``redis://127.0.0.1:6379/15`` by default); a
test fails, saying so, when none answers. Runs share that database with each
other, so every test writes under keys of its own (a unique cache ``KEY_PREFIX``,
a unique rate-limit scope) and deletes only those: never ``FLUSHDB``, and never
``cache.clear()`` on the Redis cache, which is the same thing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def pytest_configure(config: pytest.Config) -> None:
    """Keep the cache and sessions in the test database even when REDIS_URL is set.

    Before the test database is created, so it gets its cache table. A project's
    own Redis would carry what one test cached (the pricing section, say) into the
    next, and the browser tests' ``cache.clear()`` would empty its whole database,
    queued tasks included. Tests of Redis select it themselves (fixtures below).
    """
    from django.conf import settings

    if settings.REDIS_URL:
        settings.REDIS_URL = ""
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "cache_table",
            }
        }
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
        settings.RATE_LIMIT_BACKEND = "database"


def delete_keys(client: redis.Redis, pattern: str) -> None:
    """Delete the keys matching ``pattern`` (SCAN, so a busy server is not blocked)."""
    keys = list(client.scan_iter(pattern))
    if keys:
        client.delete(*keys)


def prefixed_cache_env(folder: Path, prefix: str, more_settings: str = "") -> dict[str, str]:
    """Environment for a server process whose Redis cache keys all start with ``prefix:``.

    Settings have no variable for the cache's ``KEY_PREFIX`` (a project has its own
    Redis database), so the process runs a settings module written to ``folder``
    that adds one to ``core.settings``, then ``more_settings`` (Python). Cached
    sessions (REDIS_SESSIONS) and allauth's counters are then under the test's
    prefix, to delete afterwards.
    """
    module = "prefixed_cache_settings"
    (folder / f"{module}.py").write_text(
        "from core.settings import *  # noqa: F403\n\n"
        f"CACHES['default']['KEY_PREFIX'] = {prefix!r}  # noqa: F405\n{more_settings}"
    )
    return {"PYTHONPATH": str(folder), "DJANGO_SETTINGS_MODULE": module}


@pytest.fixture
def redis_server() -> Iterator[redis.Redis]:
    """A client of the test Redis server; the test fails at once if it does not answer."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(
            f"This test needs a Redis server at {TEST_REDIS_URL} ({error}). "
            "Start one (redis-server) or point TEST_REDIS_URL at one."
        )
    yield client
    client.close()


@pytest.fixture
def redis_cache(settings: Any, redis_server: redis.Redis) -> Iterator[str]:
    """Django's cache on the test Redis server, as settings.py configures it for REDIS_URL.

    Yields the test's own ``KEY_PREFIX``; the keys under it are deleted afterwards.
    """
    prefix = f"qs-test-{uuid.uuid4().hex[:12]}"
    settings.REDIS_URL = TEST_REDIS_URL
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": TEST_REDIS_URL,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    yield prefix
    delete_keys(redis_server, f"{prefix}:*")
