import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from api.models import APIKeyUsage
from api.services import api_key_create
from credits import ledger
from services.models import Service, ServiceUsage


@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_calls_with_credits_for_ten_charge_exactly_ten(
    user, key, fund, default_services, settings
):
    """transaction=True and threads: each thread has its own connection and commits for real,
    so the ledger's row locks (SELECT ... FOR UPDATE) are what decides who pays; inside
    the usual test transaction every thread would see one uncommitted snapshot."""
    settings.API_RATE_LIMIT_PER_MINUTE = 1000
    settings.SERVICE_MAX_CONCURRENT_PER_KEY = 20
    settings.SERVICE_MAX_CONCURRENT_PER_PROCESS = 20
    Service.objects.filter(name="demo_free_service").update(credit_cost=Decimal("1.00"))
    fund(user, 10)
    statuses: list[int] = []
    start = threading.Barrier(20)
    lock = threading.Lock()

    def call() -> None:
        client = Client()
        start.wait()
        try:
            response = client.post(
                "/api/text/",
                {"operation": "count", "text": "one two"},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key}",
            )
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 10 + [402] * 10
    assert ledger.balance(user).total == Decimal("0.00")
    assert ServiceUsage.objects.filter(status=ServiceUsage.Status.SUCCEEDED).count() == 10
    assert APIKeyUsage.objects.count() == 10


def _wait_for_a_fresh_minute(needed_seconds: float) -> None:
    """The API's windows are whole clock minutes: start where ``needed_seconds`` remain,
    so a run cannot straddle two windows (each with its own 60)."""
    left = 60 - time.time() % 60
    if left < needed_seconds:
        time.sleep(left + 0.05)


@pytest.mark.django_db(transaction=True)
def test_two_hundred_concurrent_calls_on_a_sixty_per_minute_key_let_sixty_through(key):
    """200 requests from 20 threads on one key with a limit of 60 per minute.

    transaction=True and threads: each thread has its own connection and every
    counter update commits, as with concurrent requests to a real server.
    """
    _wait_for_a_fresh_minute(needed_seconds=15)
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def calls() -> None:
        client = Client()
        try:
            start.wait()
            for _ in range(10):
                response = client.get("/api/services/", HTTP_AUTHORIZATION=f"Bearer {key}")
                with lock:
                    statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=calls) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 60 + [429] * 140


# --------------------------------------------------------------------------- concurrent call slots


def run_call(key_text: str, text: str) -> Any:
    return Client().post(
        "/api/services/test_blocking_service/run",
        {"input": {"text": text}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key_text}",
    )


def start_waiting_calls(
    controls: Any, key_texts: list[str]
) -> tuple[list[threading.Thread], list[int]]:
    """Start one blocking call per key; return once all are inside the service."""
    statuses: list[int] = []

    def call(key_text: str) -> None:
        try:
            statuses.append(run_call(key_text, "wait").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(text,)) for text in key_texts]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert controls.entered.acquire(timeout=20), "a call never reached the service"
    return threads, statuses


def finish(controls: Any, threads: list[threading.Thread]) -> None:
    controls.gate.set()
    for thread in threads:
        thread.join(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_key_over_its_concurrent_calls_gets_429_while_another_key_runs(
    blocking_service, key, other_user, settings
):
    settings.SERVICE_MAX_CONCURRENT_PER_KEY = 2
    settings.SERVICE_MAX_CONCURRENT_PER_PROCESS = 10
    other_key = api_key_create(other_user, name="other")[1]
    threads, statuses = start_waiting_calls(blocking_service, [key, key])
    try:
        third = run_call(key, "now")
        assert third.status_code == 429
        assert third["Retry-After"] == "1"
        error = third.json()["error"]
        assert error["code"] == "too_many_concurrent_calls"
        assert error["details"] == {"retry_after": 1, "per_key": True}
        assert run_call(other_key, "now").status_code == 200
    finally:
        finish(blocking_service, threads)
    assert statuses == [200, 200]
    # Only the calls that ran left a usage row; the refused one did not.
    assert ServiceUsage.objects.filter(service__name="test_blocking_service").count() == 3
    assert run_call(key, "now").status_code == 200  # the slots were freed


@pytest.mark.django_db(transaction=True)
def test_a_process_over_its_concurrent_calls_gets_429_for_every_key(
    blocking_service, key, user, other_user, settings
):
    settings.SERVICE_MAX_CONCURRENT_PER_KEY = 10
    settings.SERVICE_MAX_CONCURRENT_PER_PROCESS = 2
    second = api_key_create(user, name="second")[1]
    third = api_key_create(other_user, name="third")[1]
    threads, statuses = start_waiting_calls(blocking_service, [key, second])
    try:
        refused = run_call(third, "now")
        assert refused.status_code == 429
        assert refused["Retry-After"] == "1"
        assert refused.json()["error"]["details"] == {"retry_after": 1, "per_key": False}
    finally:
        finish(blocking_service, threads)
    assert statuses == [200, 200]
    assert run_call(third, "now").status_code == 200


@pytest.mark.django_db
def test_a_failing_call_gives_its_slots_back(blocking_service, key, settings):
    settings.SERVICE_MAX_CONCURRENT_PER_KEY = 1
    settings.SERVICE_MAX_CONCURRENT_PER_PROCESS = 1
    assert run_call(key, "fail").status_code == 500
    assert run_call(key, "now").status_code == 200
    assert run_call(key, "now").status_code == 200
