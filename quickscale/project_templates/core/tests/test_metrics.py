"""/metrics: behind METRICS_TOKEN, Prometheus' text format, values read from what happened."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue

from common.testing.redis import TEST_REDIS_URL
from core.metrics import MULTIPROCESS_DIR_VARIABLE
from services.base import BaseService
from services.exceptions import ServiceFailed
from services.models import Job, Service
from services.registry import register_service
from services.tasks import sweep_job_leases
from stripe_manager.models import ReceivedStripeEvent, StripeProduct
from stripe_manager.tests.factories import (
    apply_received_events,
    deliver,
    invoice_paid,
    make_catalog,
    make_customer,
    post_signed,
    purchase_completed,
    webhook_retries_due,
)

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"
PROJECT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_metrics_tests"


@pytest.fixture(autouse=True)
def _token(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an authorised scrape, by name and labels; the text must parse."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --------------------------------------------------------------------------- access


def test_without_metrics_token_there_is_no_page(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_a_missing_token_is_401_and_a_wrong_one_403(client: Client) -> None:
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x")
    assert wrong.status_code == 403
    assert b"quickscale_" not in wrong.content
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN[:-1]}").status_code == 403


def test_only_get_is_answered(client: Client) -> None:
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


# --------------------------------------------------------------------------- values


def test_request_latency_is_recorded_per_route_method_and_status_class(client: Client) -> None:
    before = scrape(client)
    assert client.get("/health/").status_code == 200
    assert client.get("/health/").status_code == 200
    assert client.get("/no-such-page-here/").status_code == 404
    after = scrape(client)

    health = {"route": "health", "method": "GET", "status": "2xx"}
    name = "quickscale_http_request_duration_seconds_count"
    assert value(after, name, **health) - value(before, name, **health) == 2
    unresolved = {"route": "unresolved", "method": "GET", "status": "4xx"}
    assert value(after, name, **unresolved) - value(before, name, **unresolved) >= 1
    inf_bucket = {**health, "le": "+Inf"}
    assert value(after, "quickscale_http_request_duration_seconds_bucket", **inf_bucket) == value(
        after, name, **health
    )


def test_calls_and_credits_per_service_move_after_a_call(
    client: Client, user: Any, fund: Any, isolated_registry: None
) -> None:
    @register_service("test_metrics_service")
    class Echo(BaseService):
        def execute_service(self, user: Any, **kwargs: Any) -> dict[str, Any]:
            if kwargs.get("text") == "fail":
                raise RuntimeError("model crashed")
            return {"ok": True}

    Service.objects.create(name="test_metrics_service", credit_cost=Decimal("2.00"))
    fund(user, 10)
    service = {"service": "test_metrics_service"}
    before = scrape(client)
    assert value(before, "quickscale_service_calls_total", **service) == 0

    Echo().run(user, text="hello")
    with pytest.raises(ServiceFailed):
        Echo().run(user, text="fail")
    after = scrape(client)

    assert value(after, "quickscale_service_calls_total", **service) == 2
    assert value(after, "quickscale_service_calls_by_status", **service, status="succeeded") == 1
    assert value(after, "quickscale_service_calls_by_status", **service, status="failed") == 1
    # The failed call's charge was reversed: only the succeeded one costs.
    assert value(after, "quickscale_service_credits_charged", **service) == 2.0


def test_queue_depth_counts_a_queued_task_and_jobs_by_state(
    client: Client, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        sweep_job_leases.enqueue()
    service = Service.objects.create(name="test_metrics_job", credit_cost=Decimal("0"))
    Job.objects.create(
        owner=user,
        service=service,
        state=Job.State.QUEUED,
        expires_at=timezone.now() + timedelta(days=1),
    )
    after = scrape(client)

    queue = {"queue": "default"}
    assert value(after, "quickscale_task_queue_ready", **queue) == (
        value(before, "quickscale_task_queue_ready", **queue) + 1
    )
    assert value(after, "quickscale_jobs", state="queued") == 1
    assert value(after, "quickscale_jobs", state="succeeded") == 0


def test_with_the_redis_task_backend_queue_depth_is_the_rq_queue_length(
    client: Client, settings: Any, redis_server: redis.Redis
) -> None:
    queue_name = f"qs-test-metrics-{uuid.uuid4().hex[:12]}"
    settings.TASK_BACKEND = "rq"
    settings.RQ_QUEUES = {queue_name: {"URL": TEST_REDIS_URL}}
    queue = Queue(queue_name, connection=redis_server)
    try:
        assert value(scrape(client), "quickscale_task_queue_ready", queue=queue_name) == 0
        # What django-tasks-rq does on enqueue: a job pushed onto the queue's list.
        queue.enqueue("services.tasks.sweep_job_leases")
        assert value(scrape(client), "quickscale_task_queue_ready", queue=queue_name) == 1
    finally:
        queue.delete(delete_jobs=True)


def test_an_unreachable_redis_queue_leaves_out_its_series_not_the_others(
    client: Client, settings: Any
) -> None:
    settings.TASK_BACKEND = "rq"
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0"}}  # nothing listens

    samples = scrape(client)

    assert not [key for key in samples if key[0] == "quickscale_task_queue_ready"]
    assert ("quickscale_webhook_failures_unresolved", ()) in samples


def test_a_failed_webhook_counts_until_resolved(client: Client, settings: Any, user: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_GATEWAY = "simulator"
    catalog = make_catalog()
    customer = make_customer(user)
    assert value(scrape(client), "quickscale_webhook_failures_unresolved") == 0

    # A paid plan invoice whose price we do not know (products not synced yet):
    # the worker's attempt fails and is retried later, a failure is kept meanwhile.
    event = invoice_paid(customer, catalog["basic"], invoice_id="in_metrics")
    StripeProduct.objects.filter(pk=catalog["basic"].pk).update(stripe_price_id="price_renamed")
    assert deliver(client, event, secret=WEBHOOK_SECRET) == 200
    assert value(scrape(client), "quickscale_webhook_failures_unresolved") == 1

    # Synced again, the retry applies it and resolves the failure.
    StripeProduct.objects.filter(pk=catalog["basic"].pk).update(
        stripe_price_id=catalog["basic"].stripe_price_id
    )
    assert webhook_retries_due() == 1
    assert value(scrape(client), "quickscale_webhook_failures_unresolved") == 0


def test_stored_stripe_events_no_worker_applied_yet_show_as_a_backlog(
    client: Client, settings: Any, user: Any
) -> None:
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    catalog = make_catalog()
    customer = make_customer(user)
    assert value(scrape(client), "quickscale_stripe_events_due") == 0
    assert value(scrape(client), "quickscale_stripe_event_oldest_due_seconds") == 0

    for _ in range(2):  # stored by the endpoint; no worker runs
        event = purchase_completed(customer, catalog["pack"])
        assert post_signed(client, event, secret=WEBHOOK_SECRET) == 200
    waited = timezone.now() - timedelta(minutes=3)
    ReceivedStripeEvent.objects.filter(event_id=event["id"]).update(next_attempt_at=waited)
    samples = scrape(client)
    assert value(samples, "quickscale_stripe_events_due") == 2
    assert 180 <= value(samples, "quickscale_stripe_event_oldest_due_seconds") < 240

    assert apply_received_events() == 2
    samples = scrape(client)
    assert value(samples, "quickscale_stripe_events_due") == 0
    assert value(samples, "quickscale_stripe_event_oldest_due_seconds") == 0


# --------------------------------------------------------------------------- processes

RECORD_ONE_REQUEST = """
import django
django.setup()
from django.test import Client
assert Client().get("/health/live/").status_code == 200
"""


def test_with_a_multiprocess_folder_a_scrape_sums_every_process(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = {
        **os.environ,
        MULTIPROCESS_DIR_VARIABLE: str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }
    for _ in range(2):  # two web processes, each serving one request
        subprocess.run(
            [sys.executable, "-c", RECORD_ONE_REQUEST],
            cwd=PROJECT,
            env=environment,
            check=True,
            timeout=120,
        )
    monkeypatch.setenv(MULTIPROCESS_DIR_VARIABLE, str(tmp_path))

    samples = scrape(client)

    live = {"route": "health_live", "method": "GET", "status": "2xx"}
    assert value(samples, "quickscale_http_request_duration_seconds_count", **live) == 2
    # The database series are there too, once.
    assert ("quickscale_webhook_failures_unresolved", ()) in samples
