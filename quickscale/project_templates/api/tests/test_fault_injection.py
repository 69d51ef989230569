"""Fault injection: the database goes away while charged API calls are running.

Calls go through the whole API path (Django's test client, a real API key,
the charging service run) from threads, each with its own connection. Some
finish before the outage, some are inside their service when the database is
cut off (``common.testing.outage``: new connections refused, open ones ended,
as with a stopped server), some arrive during it and some after it. Once the
database is back and the reconciler has run, every charge must have a usage row
with a final outcome that matches what its client was told, and the balance
must equal grants minus charges plus reversals.

``transaction=True``: the calls commit for real, and no test transaction would
survive the outage.
"""

import threading
import time
from collections import Counter
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.test import Client

from api.models import APIKeyUsage
from api.services import api_key_create
from common.testing.outage import database_outage
from credits import ledger
from credits.models import CreditLot, LedgerEntry
from credits.tests.factories import assert_invariants
from services.base import BaseService
from services.models import Service, ServiceUsage
from services.registry import register_service

PRICE = Decimal("1.00")
GRANT = Decimal("100.00")
BEFORE, DURING_CALL, DURING_OUTAGE, AFTER = 4, 8, 3, 5
WAIT = 20  # seconds any one step may take before the test gives up

Answers = list[tuple[int, dict[str, Any]]]  # status and JSON body of each call


@pytest.fixture
def gated_service(isolated_registry):
    """A 1-credit service that waits at a gate; input ``fail`` makes it raise afterwards."""
    gate = threading.Event()
    inside = threading.Semaphore(0)

    @register_service("test_outage_service")
    class Gated(BaseService):
        def execute_service(self, user, **kwargs):
            inside.release()
            assert gate.wait(WAIT), "the test never opened the gate"
            if kwargs.get("fail"):
                raise RuntimeError("model crashed")
            return {"ok": True}

    Service.objects.create(name="test_outage_service", credit_cost=PRICE)
    return gate, inside


def call(key: str, answers: Answers, lock: threading.Lock, fail: bool) -> None:
    client = Client()
    try:
        response = client.post(
            "/api/services/test_outage_service/run",
            {"input": {"fail": fail}},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        with lock:
            answers.append((response.status_code, response.json()))
    finally:
        connection.close()


def start_calls(
    key: str, answers: Answers, lock: threading.Lock, count: int, *, failing: int = 0
) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=call, args=(key, answers, lock, index < failing))
        for index in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "a call never answered"


@pytest.mark.django_db(transaction=True)
def test_charged_calls_cut_off_by_a_database_outage_are_all_settled(
    user, fund, gated_service, settings
):
    settings.API_RATE_LIMIT_PER_MINUTE = 1000
    settings.SERVICE_MAX_CONCURRENT_PER_KEY = settings.SERVICE_MAX_CONCURRENT_PER_PROCESS = 50
    settings.SERVICE_CALL_TIMEOUT_SECONDS = 1
    gate, inside = gated_service
    fund(user, GRANT)
    _, key = api_key_create(user, name="outage")
    answers: Answers = []
    lock = threading.Lock()

    gate.set()
    join(start_calls(key, answers, lock, BEFORE))
    for _ in range(BEFORE):  # their passes, so that only the blocked calls count below
        assert inside.acquire(timeout=WAIT)
    gate.clear()
    blocked = start_calls(key, answers, lock, DURING_CALL, failing=DURING_CALL // 2)
    for _ in range(DURING_CALL):
        assert inside.acquire(timeout=WAIT), "a call never reached its service"
    with database_outage():
        join(start_calls(key, answers, lock, DURING_OUTAGE))
        gate.set()  # the blocked calls finish their work and try to record it
        join(blocked)
    join(start_calls(key, answers, lock, AFTER))

    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: BEFORE + AFTER, 503: DURING_CALL + DURING_OUTAGE}
    for status, body in answers:
        if status == 503:
            assert body["error"]["code"] == "service_unavailable"
    # Before reconciling: every charge already has its usage row and key link.
    charges = LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.CONSUME)
    assert charges.count() == BEFORE + DURING_CALL + AFTER
    assert ServiceUsage.objects.filter(ledger_entry__in=charges).count() == charges.count()
    assert APIKeyUsage.objects.count() == charges.count()
    assert ServiceUsage.objects.filter(status=ServiceUsage.Status.PENDING).count() == DURING_CALL

    time.sleep(settings.SERVICE_CALL_TIMEOUT_SECONDS + 0.1)
    call_command("reconcile_service_usage", stdout=StringIO())

    succeeded_ids = {body["data"]["usage_id"] for status, body in answers if status == 200}
    usages = ServiceUsage.objects.filter(user=user)
    assert not usages.filter(status=ServiceUsage.Status.PENDING).exists()
    succeeded = usages.filter(status=ServiceUsage.Status.SUCCEEDED)
    assert set(succeeded.values_list("pk", flat=True)) == succeeded_ids
    assert usages.filter(status=ServiceUsage.Status.FAILED).count() == DURING_CALL
    for usage in usages:
        reversed_amount = LedgerEntry.objects.filter(reverses_id=usage.ledger_entry_id).aggregate(
            total=Sum("amount")
        )["total"]
        if usage.status == ServiceUsage.Status.SUCCEEDED:
            assert (usage.credits_charged, reversed_amount) == (PRICE, None)
        else:
            assert (usage.credits_charged, reversed_amount) == (Decimal("0.00"), PRICE)

    charged = charges.count() * PRICE
    refunded = LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.REVERSAL).aggregate(
        total=Sum("amount")
    )["total"]
    assert ledger.balance(user).total == GRANT - charged + refunded
    assert ledger.balance(user).total == GRANT - len(succeeded_ids) * PRICE
    assert not CreditLot.objects.filter(remaining__lt=0).exists()
    assert_invariants(user)
