import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from api.models import APIKeyUsage
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
