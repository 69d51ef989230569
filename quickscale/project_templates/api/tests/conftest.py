import pytest

from api.services import api_key_create
from credits.tests.factories import make_user
from services.configuration import ensure_service_rows

# The services suite's fixtures, shared rather than written again.
from services.tests.conftest import blocking_service, fund, isolated_registry  # noqa: F401


@pytest.fixture(autouse=True)
def _default_rate_limit(settings):
    """Every test starts from the default limit (its counters roll back with the test)."""
    settings.API_RATE_LIMIT_PER_MINUTE = 60


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
