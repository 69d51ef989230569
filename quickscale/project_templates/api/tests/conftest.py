import pytest

from api.services import api_key_create

# The services suite's fixture, shared rather than written again.
from services.tests.conftest import blocking_service  # noqa: F401


@pytest.fixture(autouse=True)
def _default_rate_limit(settings):
    """Every test starts from the default limit (its counters roll back with the test)."""
    settings.API_RATE_LIMIT_PER_MINUTE = 60


@pytest.fixture
def key(user):
    """The full text of an API key of ``user``."""
    return api_key_create(user, name="test")[1]


@pytest.fixture
def auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}
