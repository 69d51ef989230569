"""The web server pools database connections; every other process connects directly."""

import json
import os
import secrets
import time
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from common.testing.database import session_database_url
from common.testing.process import run_python
from core.env import WEB_SERVER_FLAG, database_pool

SERVING = {WEB_SERVER_FLAG: "true"}

# Serves requests through the real ASGI application in a fresh process, the way
# uvicorn calls it (Django's test clients keep one connection on purpose, so they
# cannot show pooling), and prints the status codes and psycopg_pool's counters
# after the first and the last request (None without a pool).
SERVE = """
import asyncio, json
from common.testing.asgi import asgi_get
from core.asgi import application
from django.db import connection

def stats():
    return None if connection.pool is None else connection.pool.get_stats()

async def main():
    statuses = [(await asgi_get(application, "/health/"))[0]]
    first = stats()
    statuses += [(await asgi_get(application, "/health/"))[0] for _ in range(5)]
    print(json.dumps({"statuses": statuses, "first": first, "last": stats()}))

asyncio.run(main())
"""


def serve(database_url: str, **env: str) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DJANGO_"))}
    environ.update(DATABASE_URL=database_url, LOG_LEVEL="ERROR", **env)
    result = run_python(["-c", SERVE], environ)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_only_the_web_server_gets_a_pool_by_default():
    assert database_pool({}) is None
    assert database_pool(SERVING) == {"min_size": 1, "max_size": 10, "timeout": 3}


def test_pool_size_and_timeout_come_from_the_environment():
    options = database_pool({**SERVING, "DB_POOL_SIZE": "25", "DB_POOL_TIMEOUT": "7"})
    assert options == {"min_size": 1, "max_size": 25, "timeout": 7}
    assert database_pool({**SERVING, "DB_POOL_SIZE": "0"}) is None


@pytest.mark.parametrize(
    "env",
    [
        {"DB_POOL_SIZE": "-1"},
        {"DB_POOL_TIMEOUT": "0"},
        {"DB_POOL_SIZE": "many"},
        {"DB_CONN_MAX_AGE": "60"},
    ],
)
def test_bad_pool_settings_are_refused_with_a_clear_error(env):
    with pytest.raises(ImproperlyConfigured) as error:
        database_pool({**SERVING, **env})
    assert any(name in str(error.value) for name in env)


def test_persistent_connections_without_a_pool_stay_allowed():
    assert database_pool({**SERVING, "DB_POOL_SIZE": "0", "DB_CONN_MAX_AGE": "60"}) is None


@pytest.mark.django_db(transaction=True)  # the served app writes rows as it loads
def test_the_asgi_application_reuses_pooled_connections_across_requests():
    report = serve(session_database_url())
    assert report["statuses"] == [200] * 6
    # Five more requests opened no new connection: each borrowed one from the pool.
    assert report["last"]["connections_num"] == report["first"]["connections_num"]
    assert report["last"]["requests_num"] >= report["first"]["requests_num"] + 5


@pytest.mark.django_db(transaction=True)  # the served app writes rows as it loads
def test_the_production_start_up_check_gives_its_connection_back_to_the_pool():
    # In production the app checks the starter accounts while it loads, outside
    # any request. With a pool of one, a connection kept by that check would
    # leave every request waiting for one until it fails.
    report = serve(
        session_database_url(),
        IS_PRODUCTION="True",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="localhost",
        DEBUG="False",
        ACCOUNT_EMAIL_VERIFICATION="mandatory",
        DB_POOL_SIZE="1",
    )
    assert report["statuses"] == [200] * 6
    assert report["last"]["pool_available"] == report["last"]["pool_size"] == 1


@pytest.mark.django_db(transaction=True)  # the served app writes rows as it loads
def test_the_asgi_application_without_a_pool_connects_per_request():
    report = serve(session_database_url(), DB_POOL_SIZE="0")
    assert report == {"statuses": [200] * 6, "first": None, "last": None}


def test_a_down_database_makes_health_fail_within_the_pool_timeout():
    started = time.monotonic()
    report = serve("postgres://nobody@127.0.0.1:1/none", DB_POOL_TIMEOUT="1")
    elapsed = time.monotonic() - started
    assert report["statuses"] == [503] * 6
    # Each request after the first gave up waiting for the pool too (the count
    # also holds the first one's and the start-up's attempts).
    assert report["last"]["requests_errors"] - report["first"]["requests_errors"] == 5
    # Six requests, each waiting at most the 1 s timeout, plus process start-up
    # (the default 30 s wait of a pool would take minutes).
    assert elapsed < 30
