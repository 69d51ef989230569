"""A service added after ``bootstrap`` gets its row when a web server starts, and runs."""

import os
from decimal import Decimal

import pytest

from common.testing.database import session_database_url
from common.testing.process import run_python
from credits import ledger
from services.base import BaseService
from services.configuration import ensure_service_rows, ensure_service_rows_at_start_up
from services.models import Service
from services.registry import create_service_instance, register_service

pytestmark = pytest.mark.django_db


def test_a_service_registered_after_bootstrap_gets_its_row_and_can_be_run(
    isolated_registry, user, fund
):
    ensure_service_rows()  # what bootstrap did before the service existed

    @register_service("test_late_service")
    class Late(BaseService):
        default_credit_cost = Decimal("1.50")
        description = "Arrived after bootstrap"

        def execute_service(self, user, **kwargs):
            return {"echo": kwargs["text"]}

    assert not Service.objects.filter(name="test_late_service").exists()

    ensure_service_rows_at_start_up()

    row = Service.objects.get(name="test_late_service")
    assert (row.credit_cost, row.description, row.is_active) == (
        Decimal("1.50"),
        "Arrived after bootstrap",
        True,
    )
    fund(user, 5)
    outcome = create_service_instance("test_late_service").run(user, text="hello")
    assert outcome.result == {"echo": "hello"}
    assert ledger.balance(user).total == Decimal("3.50")


def test_start_up_leaves_the_operators_rows_as_they_are(default_services):
    Service.objects.filter(name="text_summarizer").update(
        credit_cost=Decimal("7.00"), is_active=False
    )

    ensure_service_rows_at_start_up()

    row = Service.objects.get(name="text_summarizer")
    assert (row.credit_cost, row.is_active) == (Decimal("7.00"), False)


def _web_server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DJANGO_"))}
    env.update(extra)
    return env


@pytest.mark.django_db(transaction=True)  # the started process must see the committed rows
def test_the_web_server_creates_missing_rows_when_it_loads(default_services):
    Service.objects.filter(name="demo_free_service").delete()

    result = run_python(
        ["-c", "import core.asgi"], _web_server_env(DATABASE_URL=session_database_url())
    )

    assert result.returncode == 0, result.stderr
    row = Service.objects.get(name="demo_free_service")
    assert row.credit_cost == Decimal("0.00") and row.is_active


def test_the_web_server_starts_while_its_database_is_down():
    unreachable = "postgres://nobody@127.0.0.1:1/none"
    env = _web_server_env(DATABASE_URL=unreachable, DB_POOL_TIMEOUT="1", LOG_LEVEL="WARNING")

    result = run_python(["-c", "import core.asgi"], env)

    assert result.returncode == 0, result.stderr
    assert "service rows not checked at start-up" in result.stderr
