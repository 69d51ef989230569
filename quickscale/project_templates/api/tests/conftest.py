from decimal import Decimal

import pytest

from api.services import api_key_create
from credits import ledger
from credits.tests.factories import make_user
from services.configuration import ensure_service_rows


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Each test starts with empty counters (Django's test database has the cache table)."""
    from django.core.cache import cache

    settings.API_RATE_LIMIT_PER_MINUTE = 60
    cache.clear()


@pytest.fixture
def user(db):
    return make_user()


@pytest.fixture
def other_user(db):
    return make_user()


@pytest.fixture
def default_services(db):
    ensure_service_rows()


@pytest.fixture
def key(user):
    """The full text of an API key of ``user``."""
    return api_key_create(user, name="test")[1]


@pytest.fixture
def auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def fund():
    counter = iter(range(1_000_000))

    def give(user, amount):
        return ledger.grant(
            user, Decimal(amount), source="admin", reference=f"api-fund-{next(counter)}-{user.pk}"
        )

    return give


@pytest.fixture
def isolated_registry():
    """Let a test register classes without leaking them into other tests."""
    from services import decorators

    saved = dict(decorators._registry)
    yield
    decorators._registry.clear()
    decorators._registry.update(saved)
