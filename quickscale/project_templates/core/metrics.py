"""The Prometheus-format ``/metrics`` endpoint and the request-latency middleware.

Two kinds of series, from two places:

* Business and queue series (service calls and credits, queue depth, job
  states, unresolved webhook failures, Stripe events waiting for a worker) are
  read from PostgreSQL when scraped, a few aggregate queries. Every web and
  worker process writes to the same database, so any process answers for all
  of them, and nothing is counted twice or lost when a process restarts.
* Request latency is measured in the process that served the request and kept
  in its memory. A process holds only its own requests, so uvicorn's worker
  processes (WEB_CONCURRENCY) share theirs through prometheus_client's
  multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` names a folder (the
  image's entrypoint sets one for the web role); each pod is then one target.
  Without it, a scrape sees the process it happened to reach.

The endpoint exists only when ``METRICS_TOKEN`` is set, and answers only a
request bearing it (``Authorization: Bearer <token>``).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator

import redis
from django.conf import settings
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_tasks_db.models import DBTaskResult
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from rq import Queue

from services.models import Job, ServiceUsage
from stripe_manager.selectors import open_webhook_failure_count, stripe_event_backlog

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# A method label outside this set would let any client add series at will.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Whitenoise's static files, 404s and pages answered before URL resolution.
UNRESOLVED_ROUTE = "unresolved"
# From a cached page to an LLM call that streams for a minute.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# This process's latency series. Registered on a registry of our own, not
# prometheus_client's global one, which would also export the Python runtime's.
LATENCY_REGISTRY = CollectorRegistry()
REQUEST_LATENCY = Histogram(
    "quickscale_http_request_duration_seconds",
    "Time from a request reaching the app to its response (a streamed body's first byte).",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=LATENCY_REGISTRY,
)


def observe_request(route: str, method: str, status_code: int, seconds: float) -> None:
    """Record one request's latency under its route name, method and status class (2xx)."""
    label_method = method if method in KNOWN_METHODS else "other"
    REQUEST_LATENCY.labels(route, label_method, f"{status_code // 100}xx").observe(seconds)


class RequestLatencyMiddleware:
    """Time every request: one clock read before and after, one histogram observation."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        route = match.view_name if match is not None else UNRESOLVED_ROUTE
        elapsed = time.perf_counter() - started
        observe_request(route, request.method or "", response.status_code, elapsed)
        return response


class DatabaseCollector(Collector):
    """Series computed from PostgreSQL at scrape time: the same answer from every process."""

    def collect(self) -> Iterator[Metric]:
        yield from _service_usage()
        yield from _task_queue()
        yield from _job_states()
        yield from _webhook_failures()


def _service_usage() -> Iterator[Metric]:
    # One row per (service, status); a call moves between statuses (pending, then
    # succeeded or failed, perhaps refunded later), so only the total is a counter.
    calls = CounterMetricFamily(
        "quickscale_service_calls",
        "Calls of each service ever recorded (ServiceUsage rows).",
        labels=["service"],
    )
    by_status = GaugeMetricFamily(
        "quickscale_service_calls_by_status",
        "Calls of each service in each status now (pending, succeeded, failed, ...).",
        labels=["service", "status"],
    )
    credits = GaugeMetricFamily(
        "quickscale_service_credits_charged",
        "Credits the calls of each service cost now (a failed or refunded call costs 0).",
        labels=["service"],
    )
    rows = (
        ServiceUsage.objects.order_by()
        .values_list("service__name", "status")
        .annotate(calls=Count("id"), charged=Sum("credits_charged"))
    )
    calls_per_service: dict[str, int] = {}
    credits_per_service: dict[str, float] = {}
    for service, status, count, charged in rows:
        by_status.add_metric([service, status], count)
        calls_per_service[service] = calls_per_service.get(service, 0) + count
        credits_per_service[service] = credits_per_service.get(service, 0.0) + float(charged or 0)
    for service, count in calls_per_service.items():
        calls.add_metric([service], count)
        credits.add_metric([service], credits_per_service[service])
    yield from (calls, by_status, credits)


def _task_queue() -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "quickscale_task_queue_ready",
        "Tasks due now and waiting for a worker, per queue (PostgreSQL, or Redis with "
        "TASK_BACKEND=rq).",
        labels=["queue"],
    )
    if getattr(settings, "TASK_BACKEND", "database") == "rq":
        try:
            lengths = list(_redis_queue_lengths())
        except redis.RedisError as error:
            # The other series still answer; a missing queue series is the signal.
            logger.warning("metrics: task queue unreadable", extra={"error": str(error)})
            lengths = []
        for queue, waiting in lengths:
            depth.add_metric([queue], waiting)
    else:
        rows = (
            DBTaskResult.objects.ready()
            .order_by()
            .values_list("queue_name")
            .annotate(waiting=Count("id"))
        )
        for queue, waiting in rows:
            depth.add_metric([queue], waiting)
    yield depth


def _redis_queue_lengths() -> Iterator[tuple[str, int]]:
    """The length of each RQ queue: the tasks enqueued and not yet taken by a worker."""
    for name, options in settings.RQ_QUEUES.items():
        with redis.Redis.from_url(options["URL"], socket_connect_timeout=2) as connection:
            yield name, Queue(name, connection=connection).count


def _job_states() -> Iterator[Metric]:
    jobs = GaugeMetricFamily("quickscale_jobs", "Service jobs in each state.", labels=["state"])
    counted = dict(Job.objects.order_by().values_list("state").annotate(n=Count("id")))
    for state in Job.State.values:
        jobs.add_metric([state], counted.get(state, 0))
    yield jobs


def _webhook_failures() -> Iterator[Metric]:
    unresolved = open_webhook_failure_count()  # the staff dashboard's figure
    yield GaugeMetricFamily(
        "quickscale_webhook_failures_unresolved",
        "Stripe webhook events whose processing failed and is not resolved yet.",
        value=unresolved,
    )
    # Stored events no worker has applied yet: purchases waiting for their credits.
    backlog = stripe_event_backlog()
    yield GaugeMetricFamily(
        "quickscale_stripe_events_due",
        "Stored Stripe events due to be applied (pending, next attempt reached).",
        value=backlog.due,
    )
    yield GaugeMetricFamily(
        "quickscale_stripe_event_oldest_due_seconds",
        "Seconds the oldest due Stripe event has waited for a worker (0 when none).",
        value=backlog.oldest_due_seconds,
    )


def exposition() -> bytes:
    """Every series in Prometheus' text format."""
    registry = CollectorRegistry()
    multiprocess_dir = os.environ.get(MULTIPROCESS_DIR_VARIABLE, "")
    if multiprocess_dir:
        # The latency every process of this machine wrote to the shared folder.
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return generate_latest(registry)


class _ThisProcess(Collector):
    def collect(self) -> Iterable[Metric]:
        return LATENCY_REGISTRY.collect()


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Answer the metrics to a bearer of METRICS_TOKEN; without the setting, there is no page."""
    token: str = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        raise Http404("Metrics are off: METRICS_TOKEN is not set.")
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not offered.strip():
        response = HttpResponse(
            "A bearer token is required.\n", status=401, content_type=CONTENT_TYPE
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # compare_digest takes as long whichever byte differs: the answer's timing tells nothing.
    if not hmac.compare_digest(offered.strip().encode(), token.encode()):
        logger.warning("metrics: wrong token", extra={"path": request.path})
        return HttpResponse("Wrong token.\n", status=403, content_type=CONTENT_TYPE)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)
