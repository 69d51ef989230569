import threading
from decimal import Decimal

import pytest

from services.base import BaseService
from services.models import Service
from services.registry import register_service


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
