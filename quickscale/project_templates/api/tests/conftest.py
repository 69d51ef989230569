import pytest

from api.services import api_key_create
from credits.tests.factories import make_user
from services.configuration import ensure_service_rows

# The services suite's fixtures, shared rather than written again.
from services.tests.conftest import fund, isolated_registry  # noqa: F401


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
