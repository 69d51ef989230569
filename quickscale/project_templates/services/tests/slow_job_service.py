"""A slow long-running service for the tests that run a real worker process.

Not registered on import (the suite's registry stays as it is): the test and
the worker process each call ``register()``. Each unit sleeps, is charged,
then reported, so a worker can be killed in the middle of a job.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.base import BaseService
from services.registry import register_service
from services.validation import clean_int, only_fields

if TYPE_CHECKING:
    from services.jobs import JobContext

NAME = "test_slow_job"
UNIT_COST = Decimal("2.00")
SECONDS_PER_UNIT = 0.3


class SlowJob(BaseService):
    """Count ``items`` units slowly."""

    long_running = True
    max_run_seconds = 120

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        only_fields(inputs, {"items"})
        return {"items": clean_int(inputs.get("items"), field="items", default=5, low=1, high=50)}

    def billable_units(self, cleaned: dict[str, Any]) -> int:
        return int(cleaned["items"])

    def execute_job(self, job: JobContext, **kwargs: Any) -> dict[str, Any]:
        items: int = kwargs["items"]
        for unit in range(1, items + 1):
            time.sleep(SECONDS_PER_UNIT)
            job.charge(1)
            job.progress(100 * unit / items, f"{unit} of {items}")
        return {"done": items}


def register() -> type[SlowJob]:
    """Register ``SlowJob`` as ``test_slow_job`` in this process."""
    return register_service(NAME)(SlowJob)
