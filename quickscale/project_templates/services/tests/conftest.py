import threading
from decimal import Decimal

import pytest

from credits import ledger
from credits.tests.factories import make_user
from services import registry
from services.base import BaseService
from services.configuration import ensure_service_rows
from services.registry import register_service
from services.models import Service


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
    saved = dict(registry._registry)
    yield
    registry._registry.clear()
    registry._registry.update(saved)


@pytest.fixture
def other_user(db):
    return make_user()


@pytest.fixture
def blocking_service(isolated_registry, db):
    """A free service whose "wait" calls block until ``gate`` is set; "fail" raises.

    ``entered`` is released by each call that starts waiting, so a test knows when
    its calls are inside the service.
    """

    class Controls:
        entered = threading.Semaphore(0)
        gate = threading.Event()

    @register_service("test_blocking_service")
    class Blocking(BaseService):
        def execute_service(self, user, **kwargs):
            if kwargs.get("text") == "wait":
                Controls.entered.release()
                assert Controls.gate.wait(timeout=30), "the test never opened the gate"
            if kwargs.get("text") == "fail":
                raise RuntimeError("model crashed")
            return {"ok": True}

    Service.objects.create(name="test_blocking_service", credit_cost=Decimal("0.00"))
    yield Controls
    Controls.gate.set()  # a failed test must not leave threads waiting
