"""The landing page's pricing section with two web processes sharing the Redis cache.

Each process keeps its own short-lived copy of the section
(``pricing_cache.LOCAL_SECONDS``); everything else lives in the shared cache. A
process is simulated by what is its own: its copy (``pricing_cache._local``) and
its clock. The database and Redis are shared, as they are between real processes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from stripe_manager import pricing_cache

pytestmark = pytest.mark.django_db
T = TypeVar("T")


def _pricing_text(client: Client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    found = re.search(r'<section[^>]*id="pricing".*?</section>', response.content.decode(), re.S)
    assert found, "the landing page has no pricing section"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(0)).split())


class Process:
    """One web process: its own pricing copy; the clock, database and Redis are shared."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.copy: dict[bool, tuple[float, str]] = {}
        self._monkeypatch = monkeypatch

    def serve(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a request, or a catalog change) in this process."""
        self._monkeypatch.setattr(pricing_cache, "_local", self.copy)
        return work()


def test_a_catalog_change_in_one_process_shows_in_another_within_local_seconds(
    redis_cache, redis_server, catalog, monkeypatch, django_capture_on_commit_callbacks
):
    now = 1000.0
    monkeypatch.setattr(pricing_cache, "_clock", lambda: now)
    first, second = Process(monkeypatch), Process(monkeypatch)
    client = Client()

    assert "Pro $45.00" in first.serve(lambda: _pricing_text(client))
    # The second process renders nothing: it reads the first one's section from Redis.
    with CaptureQueriesContext(connection) as queries:
        assert "Pro $45.00" in second.serve(lambda: _pricing_text(client))
    assert not any("stripe_manager_stripeproduct" in q["sql"] for q in queries.captured_queries)
    shared = f"{redis_cache}:*pricing_section*"
    assert list(redis_server.scan_iter(shared))

    def rename_pro() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            catalog["pro"].name = "Pro Plus"
            catalog["pro"].save()

    first.serve(rename_pro)  # drops the shared section and the first process's copy
    assert not list(redis_server.scan_iter(shared))
    assert "Pro Plus $45.00" in first.serve(lambda: _pricing_text(client))

    now += pricing_cache.LOCAL_SECONDS - 0.5  # the second process's copy is still young
    assert "Pro $45.00" in second.serve(lambda: _pricing_text(client))
    now += 0.5  # LOCAL_SECONDS after it took its copy: no older than that, ever
    assert "Pro Plus $45.00" in second.serve(lambda: _pricing_text(client))
