import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from services.models import ServiceUsage
from users.models import CustomUser
from users.tests.factories import make_user

URL = reverse("services:detail", args=["test_blocking_service"])
HTMX = {"HTTP_HX_REQUEST": "true"}


def post(user: CustomUser, text: str, **headers: Any) -> Any:
    client = Client()
    client.force_login(user)
    return client.post(URL, {"text": text}, **headers)


@pytest.mark.django_db(transaction=True)
def test_a_user_over_their_concurrent_calls_gets_429_while_another_user_runs(
    blocking_service, settings
):
    """Two calls of one user block inside the service; the user's third is refused.

    transaction=True and threads: each thread has its own connection and the
    call slots commit, as with concurrent requests to a real server.
    """
    settings.SERVICE_MAX_CONCURRENT_PER_KEY = 2
    settings.SERVICE_MAX_CONCURRENT_PER_PROCESS = 10
    user, other = make_user(), make_user()
    statuses: list[int] = []

    def call() -> None:
        try:
            statuses.append(post(user, "wait").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in threads:
            assert blocking_service.entered.acquire(timeout=20), "a call never started"
        refused = post(user, "now")
        assert refused.status_code == 429
        assert refused["Retry-After"] == "1"
        assert "At most 2 calls may run at once" in refused.content.decode()
        # htmx swaps only 2xx answers: the panel shows the message with a 200.
        refused_htmx = post(user, "now", **HTMX)
        assert refused_htmx.status_code == 200
        assert "At most 2 calls may run at once" in refused_htmx.content.decode()
        assert post(other, "now").status_code == 200
    finally:
        blocking_service.gate.set()
        for thread in threads:
            thread.join(timeout=30)
    assert statuses == [200, 200]
    assert ServiceUsage.objects.filter(user=user).count() == 2
    assert post(user, "now").status_code == 200
