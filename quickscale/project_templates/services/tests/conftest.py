import threading
from decimal import Decimal
from typing import Any

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


# --------------------------------------------------------------------------- jobs

UNIT_COST = Decimal("1.50")


@pytest.fixture
def counting_service(isolated_registry, db):
    """A long-running service over ``items`` units at 1.50 a unit, with hooks for the tests.

    Each unit is charged, then reported as progress. ``Controls.on_unit(job, n)``
    runs before unit ``n``'s report (a test cancels there), ``before_return(job)``
    after the last report; ``fail_at`` makes unit ``fail_at`` raise; ``runs``
    counts the runs that started.
    """
    from services.jobs import JobContext
    from services.validation import clean_int, only_fields

    class Controls:
        runs = 0
        on_unit: Any = None
        before_return: Any = None
        service: Any = None

    @register_service("test_counting_job")
    class Counting(BaseService):
        long_running = True
        max_run_seconds = 60

        def validate_input(self, **inputs: Any) -> dict[str, Any]:
            only_fields(inputs, {"items", "fail_at"})
            return {
                "items": clean_int(inputs.get("items"), field="items", default=3, low=1, high=50),
                "fail_at": clean_int(
                    inputs.get("fail_at"), field="fail_at", default=0, low=0, high=50
                ),
            }

        def billable_units(self, cleaned: dict[str, Any]) -> int:
            return int(cleaned["items"])

        def execute_job(self, job: JobContext, **kwargs: Any) -> dict[str, Any]:
            Controls.runs += 1
            items = kwargs["items"]
            for unit in range(1, items + 1):
                if unit == kwargs["fail_at"]:
                    raise RuntimeError("model crashed")
                job.charge(1)
                job.keep_partial_result({"done": unit})
                if Controls.on_unit is not None:
                    Controls.on_unit(job, unit)
                job.progress(100 * unit / items, f"{unit} of {items}")
            if Controls.before_return is not None:
                Controls.before_return(job)
            return {"done": items}

    Service.objects.create(name="test_counting_job", credit_cost=UNIT_COST)
    Controls.service = Counting()
    return Controls


@pytest.fixture
def enqueue(django_capture_on_commit_callbacks):
    """``enqueue(service, user, **inputs)``: ``enqueue_job`` with its on-commit enqueue run.

    A test runs in one transaction that never commits, so the hooks that
    would put the task on the queue are captured and run here.
    """
    from services.jobs import enqueue_job

    def call(service: BaseService, account: Any, *, origin: str = "web", **inputs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return enqueue_job(service, account, origin=origin, inputs=inputs)

    return call


@pytest.fixture
def member(client, user, fund):
    """A signed-in user with 5 credits (the service pages' visitor)."""
    fund(user, 5)
    client.force_login(user)
    return user
