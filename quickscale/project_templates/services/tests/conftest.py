from decimal import Decimal

import pytest

from credits import ledger
from credits.tests.factories import make_user
from services import decorators
from services.configuration import ensure_service_rows


@pytest.fixture
def user(db):
    return make_user()


@pytest.fixture
def default_services(db):
    """The Service rows of every registered class, as bootstrap creates them."""
    ensure_service_rows()


@pytest.fixture
def fund():
    """Give a user credits through the ledger: fund(user, 10)."""
    counter = iter(range(1_000_000))

    def give(user, amount):
        return ledger.grant(
            user, Decimal(amount), source="admin", reference=f"test-fund-{next(counter)}-{user.pk}"
        )

    return give


@pytest.fixture
def isolated_registry():
    """Let a test register classes without leaking them into other tests."""
    saved = dict(decorators._registry)
    yield
    decorators._registry.clear()
    decorators._registry.update(saved)


@pytest.fixture
def other_user(db):
    return make_user()
