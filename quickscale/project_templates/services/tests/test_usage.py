"""A call's charge, its usage row and its outcome: two transactions and the reconciler.

Tests marked ``transaction=True`` need real commits: another connection has to
see what a call committed, a thread has to run a call beside the reconciler, or
the database is cut off (which no test transaction survives).
"""

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.utils import timezone

from common.testing.database import session_database_url
from common.testing.outage import database_outage
from credits import ledger
from credits.models import LedgerEntry
from credits.tests.factories import assert_invariants, ledger_state
from services.base import BaseService
from services.exceptions import ServiceFailed
from services.models import Service, ServiceUsage
from services.registry import register_service
from services.usage import usage_start

PRICE = Decimal("2.00")


def reconcile() -> str:
    out = StringIO()
    call_command("reconcile_service_usage", stdout=out)
    return out.getvalue()


def backdate(usage: ServiceUsage, seconds: float) -> None:
    ServiceUsage.objects.filter(pk=usage.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def reversals_of(usage: ServiceUsage) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(reverses_id=usage.ledger_entry_id))


@pytest.fixture
def paid_service(isolated_registry):
    """Register a 2-credit test service whose behaviour each test sets with ``behave``."""
    behaviour: dict[str, Callable[[object], dict[str, object]]] = {}

    @register_service("test_usage_service")
    class Probe(BaseService):
        def execute_service(self, user, **kwargs):
            return behaviour["execute"](user)

    Service.objects.create(name="test_usage_service", credit_cost=PRICE)

    def behave(execute):
        behaviour["execute"] = execute
        return Probe()

    return behave


@pytest.mark.django_db(transaction=True)
def test_a_call_runs_after_its_charge_and_pending_usage_commit_and_locks_no_credits(
    user, fund, paid_service
):
    fund(user, 10)
    seen: dict[str, Any] = {}

    def execute(caller):
        # Another connection sees only what has committed.
        with psycopg.connect(session_database_url(), autocommit=True) as other:
            seen["usage"] = other.execute(
                "SELECT status, credits_charged, ledger_entry_id IS NOT NULL"
                " FROM services_serviceusage WHERE user_id = %s",
                [caller.pk],
            ).fetchall()
            # NOWAIT fails at once if the call still held a lock on the user's credits.
            seen["locked lots"] = other.execute(
                "SELECT id FROM credits_creditlot WHERE user_id = %s FOR UPDATE NOWAIT",
                [caller.pk],
            ).fetchall()
        seen["in transaction"] = connection.in_atomic_block
        return {"ok": True}

    outcome = paid_service(execute).run(user, text="x")

    assert seen["usage"] == [("pending", PRICE, True)]
    assert len(seen["locked lots"]) == 1
    assert seen["in transaction"] is False
    assert outcome.usage.status == ServiceUsage.Status.SUCCEEDED
    assert ServiceUsage.objects.get().status == ServiceUsage.Status.SUCCEEDED
    assert ledger.balance(user).total == Decimal("8.00")


@pytest.mark.django_db
def test_what_the_hook_writes_commits_with_the_charge_or_not_at_all(user, fund, paid_service):
    fund(user, 10)
    before = ledger_state()
    service = paid_service(lambda caller: {"ok": True})
    linked = []

    def link_then_fail(usage):
        linked.append(usage.status)
        raise RuntimeError("link refused")

    with pytest.raises(RuntimeError, match="link refused"):
        service.run(user, text="x", on_usage_created=link_then_fail)

    assert linked == [ServiceUsage.Status.PENDING]
    assert ledger_state() == before
    assert not ServiceUsage.objects.exists()


@pytest.mark.django_db
def test_reconcile_fails_and_refunds_only_calls_pending_longer_than_the_timeout(
    user, fund, settings
):
    settings.SERVICE_CALL_TIMEOUT_SECONDS = 60
    service = Service.objects.create(name="test_reconciled", credit_cost=PRICE)
    free = Service.objects.create(name="test_reconciled_free", credit_cost=Decimal("0"))
    fund(user, 10)
    stale, _ = usage_start(user, service, origin="api", summary="", charge=True)
    stale_free, _ = usage_start(user, free, origin="api", summary="", charge=False)
    running, _ = usage_start(user, service, origin="api", summary="", charge=True)
    backdate(stale, 61)
    backdate(stale_free, 61)
    assert ledger.balance(user).total == Decimal("6.00")

    output = reconcile()

    stale.refresh_from_db()
    stale_free.refresh_from_db()
    running.refresh_from_db()
    assert "failed and refunded 2 calls" in output
    assert stale.status == stale_free.status == ServiceUsage.Status.FAILED
    assert stale.credits_charged == Decimal("0.00")
    assert [entry.amount for entry in reversals_of(stale)] == [PRICE]
    assert running.status == ServiceUsage.Status.PENDING
    assert running.credits_charged == PRICE
    assert reversals_of(running) == []
    assert ledger.balance(user).total == Decimal("8.00")
    assert_invariants(user)

    # A second run finds nothing left to do and changes nothing.
    before = ledger_state()
    assert "failed and refunded 0 calls" in reconcile()
    assert ledger_state() == before


@pytest.mark.django_db(transaction=True)
def test_a_call_that_finishes_after_it_was_reconciled_is_refused_and_refunded_once(
    user, fund, paid_service, settings
):
    settings.SERVICE_CALL_TIMEOUT_SECONDS = 60
    fund(user, 10)
    entered, release = threading.Event(), threading.Event()

    def execute(caller):
        entered.set()
        assert release.wait(10)
        return {"ok": True}

    service = paid_service(execute)
    outcome: dict[str, object] = {}

    def call():
        try:
            service.run(user, text="x")
        except ServiceFailed as error:
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=call)
    thread.start()
    assert entered.wait(10)
    usage = ServiceUsage.objects.get()
    backdate(usage, 61)
    assert "failed and refunded 1 call " in reconcile()
    release.set()
    thread.join(10)

    error = outcome["error"]
    assert isinstance(error, ServiceFailed)
    assert error.usage.pk == usage.pk
    usage.refresh_from_db()
    assert usage.status == ServiceUsage.Status.FAILED
    assert len(reversals_of(usage)) == 1
    assert ledger.balance(user).total == Decimal("10.00")
    assert_invariants(user)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("service_fails", [False, True], ids=["success", "failure"])
def test_an_outcome_lost_to_a_database_outage_stays_pending_until_reconciled(
    user, fund, paid_service, settings, service_fails
):
    settings.SERVICE_CALL_TIMEOUT_SECONDS = 1
    fund(user, 10)

    def cut_off_the_database():
        with database_outage():
            pass

    def execute(caller):
        # The database goes away during the call and is back before it ends, but
        # the connection the call started with is gone, so recording fails.
        outage = threading.Thread(target=cut_off_the_database)
        outage.start()
        outage.join()
        if service_fails:
            raise RuntimeError("model crashed")
        return {"ok": True}

    with pytest.raises(OperationalError):
        paid_service(execute).run(user, text="x")

    connection.close()
    usage = ServiceUsage.objects.get()
    assert usage.status == ServiceUsage.Status.PENDING
    assert usage.credits_charged == PRICE
    assert ledger.balance(user).total == Decimal("8.00")

    backdate(usage, 2)
    reconcile()
    usage.refresh_from_db()
    assert usage.status == ServiceUsage.Status.FAILED
    assert usage.credits_charged == Decimal("0.00")
    assert len(reversals_of(usage)) == 1
    assert ledger.balance(user).total == Decimal("10.00")
    assert_invariants(user)


@pytest.mark.django_db(transaction=True)
def test_bootstrap_fails_and_refunds_calls_left_pending(user, fund, settings):
    """transaction=True: bootstrap runs migrate and createcachetable, which commit."""
    settings.DJANGO_SUPERUSER_EMAIL = ""
    settings.DJANGO_SUPERUSER_PASSWORD = ""
    settings.SERVICE_CALL_TIMEOUT_SECONDS = 60
    service = Service.objects.create(name="test_left_pending", credit_cost=PRICE)
    fund(user, 10)
    usage, _ = usage_start(user, service, origin="web", summary="", charge=True)
    backdate(usage, 61)

    out = StringIO()
    call_command("bootstrap", "--skip-collectstatic", stdout=out)

    usage.refresh_from_db()
    assert usage.status == ServiceUsage.Status.FAILED
    assert ledger.balance(user).total == Decimal("10.00")
    assert "unfinished service calls: failed and refunded 1 call " in out.getvalue()
