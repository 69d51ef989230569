"""The HTTP API under /api/ (django-ninja): thin endpoints over services and the ledger.

Authentication is ``Authorization: Bearer <API key>``; the same check counts
the request against the key's rate limit (``core.body_limit`` limits the body
before Django reads it). Every answer is the envelope of ``api/schemas.py``;
errors are mapped in one place (``api/errors.py``). OpenAPI at /api/openapi.json,
interactive docs at /api/docs (django-ninja's bundled Swagger UI, local files).

Background jobs (``services/jobs.py``). ``POST /services/{name}/run`` with
``"async": true``, or any call to a long-running service, queues a job and
answers 202 with ``Location: /api/jobs/{id}`` and the job; ``GET
/jobs/{id}`` follows it, ``DELETE /jobs/{id}`` cancels it, ``GET /jobs/``
lists the key owner's jobs and ``GET /jobs/{id}/file`` downloads a result
file. Another user's job is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from django.urls import reverse
from ninja import NinjaAPI, Query, Schema, Status
from ninja.openapi.schema import OpenAPISchema
from ninja.security.http import HttpAuthBase
from pydantic import Field

from api.errors import ERROR_STATUSES, ApiError, install_handlers
from api.models import APIKey
from api.parser import BoundedJsonParser
from api.schemas import (
    BalanceEnvelope,
    ErrorEnvelope,
    JobEnvelope,
    JobListEnvelope,
    RunEnvelope,
    ServiceListEnvelope,
    TextIn,
    UsageEnvelope,
)
from api.services import api_key_authenticate, api_key_job_record, api_key_usage_record
from api.streaming import event_stream_response
from common import ratelimit
from common.concurrency import CallSlotsBusy, call_slot
from common.json_input import MAX_DEPTH, MAX_INT_DIGITS, JsonInputError, loads_bounded
from credits import ledger
from llm.streaming import StreamingService, release_connection
from services import jobs
from services import selectors as service_selectors
from services.base import BaseService, reserved_input_names
from services.downloads import result_file_response
from services.exceptions import ServiceInputError
from services.models import Job, ServiceUsage
from services.registry import create_service_instance, registered_services

TEXT_OPERATIONS = {
    "analyze": "text_sentiment_analysis",
    "summarize": "text_summarizer",
    "count": "demo_free_service",
}
ERRORS = {status: ErrorEnvelope for status in sorted(ERROR_STATUSES)}
RETRY_AFTER_DESCRIPTIONS = {
    429: "Seconds until the key may call again.",
    503: "Seconds until the database is expected to answer again.",
}
LOCATION_DESCRIPTION = "The queued job's address: GET it to follow the job."
AUTH_HELP = "Send your API key as 'Authorization: Bearer <key>' (create one on the API keys page)."


class ApiKeyAuth(HttpAuthBase):
    """Bearer API key, then the key's rate limit; OpenAPI documents an HTTP bearer scheme.

    It reads the header itself rather than through ninja's ``HttpBearer``, so a
    missing header, a malformed one and an unknown key each get their own error code.
    """

    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest) -> APIKey:
        header = request.headers.get("Authorization", "")
        if not header:
            raise ApiError(401, "missing_api_key", f"No API key. {AUTH_HELP}")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise ApiError(401, "malformed_authorization", f"Malformed header. {AUTH_HELP}")
        key = api_key_authenticate(token)
        if key is None:
            raise ApiError(
                401, "invalid_api_key", "The API key is unknown or revoked. Create a new key."
            )
        limit = int(settings.API_RATE_LIMIT_PER_MINUTE)
        if limit:  # 0 switches the limit off
            decision = ratelimit.hit("api-key", str(key.pk), limit=limit, window_seconds=60)
            if not decision.allowed:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"Too many requests for this key. Retry in {decision.retry_after} s.",
                    details={"retry_after": decision.retry_after},
                    headers={"Retry-After": str(decision.retry_after)},
                )
        return key


class QuickScaleApi(NinjaAPI):
    """NinjaAPI that also documents the Retry-After header of 429 and 503 answers, and the
    Location header of a queued job's 202."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, description in RETRY_AFTER_DESCRIPTIONS.items():
                    answer = operation.get("responses", {}).get(status)
                    if answer is not None:
                        answer["headers"] = {
                            "Retry-After": {
                                "description": description,
                                "schema": {"type": "integer", "minimum": 1},
                            }
                        }
                queued = operation.get("responses", {}).get(202)
                if queued is not None and operation.get("operationId") == "run_service":
                    queued["headers"] = {
                        "Location": {
                            "description": LOCATION_DESCRIPTION,
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    }
        return schema


api = QuickScaleApi(
    title="QuickScale API",
    version="1",
    description=(
        "Metered AI services. Every answer is {success, data, error}. JSON bodies nest at "
        f"most {MAX_DEPTH} levels; their numbers are finite, integers at most "
        f"{MAX_INT_DIGITS} digits."
    ),
    auth=ApiKeyAuth(),
    urls_namespace="api",
    parser=BoundedJsonParser(),
)
install_handlers(api)


def _key(request: HttpRequest) -> APIKey:
    key = request.auth  # type: ignore[attr-defined]
    assert isinstance(key, APIKey)
    return key


@contextmanager
def _call_slot(request: HttpRequest) -> Iterator[None]:
    """Hold one of the key's and the process's service call slots; 429 when either is full."""
    with ExitStack() as stack:
        try:
            stack.enter_context(call_slot(f"api-key:{_key(request).pk}"))
        except CallSlotsBusy as busy:
            raise ApiError(
                429,
                "too_many_concurrent_calls",
                str(busy),
                details={"retry_after": busy.retry_after, "per_key": busy.per_key},
                headers={"Retry-After": str(busy.retry_after)},
            ) from None
        yield


def _service(name: str) -> BaseService:
    """The service ``name`` with its row read: a 404 comes before the call slot and the
    body are taken, and ``run`` charges by this same row (one query a call)."""
    service = create_service_instance(name)
    service.configuration()
    return service


def _run(request: HttpRequest, service: BaseService, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run ``service`` for the key's user; the key's link commits with the charge."""
    key = _key(request)
    outcome = service.run(
        key.user, origin="api", on_usage_created=partial(api_key_usage_record, key), **inputs
    )
    return {
        "success": True,
        "data": {
            "service": service.name,
            "usage_id": outcome.usage.pk,
            "credits_charged": str(outcome.usage.credits_charged),
            "result": outcome.result,
        },
        "error": None,
    }


@api.post("/text/", response={200: RunEnvelope, **ERRORS}, operation_id="process_text")
def process_text(request: HttpRequest, payload: TextIn) -> dict[str, Any]:
    """Analyze (sentiment), summarize or count a text."""
    service = _service(TEXT_OPERATIONS[payload.operation])
    with _call_slot(request):
        return _run(request, service, {"text": payload.text})


@api.get("/services/", response={200: ServiceListEnvelope, **ERRORS}, operation_id="list_services")
def list_services(request: HttpRequest) -> dict[str, Any]:
    """List the active services, their cost per call (per unit for a job), and which run as jobs."""
    classes = registered_services()
    return {
        "success": True,
        "data": [
            {
                "name": service.name,
                "description": service.description,
                "credit_cost": str(service.credit_cost),
                "runs_as_job": name_runs_as_job(classes, service.name),
            }
            for service in service_selectors.active_services()
        ],
        "error": None,
    }


def name_runs_as_job(classes: dict[str, type[BaseService]], name: str) -> bool:
    """Whether a call to ``name`` always becomes a job (its class is long-running)."""
    cls = classes.get(name)
    return cls is not None and cls.long_running


# Every service takes at least one input field (its web form has one too); an
# empty input is refused here, for every service, as the schema says.
RUN_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["input"],
                "properties": {
                    "input": {
                        "type": "object",
                        "description": 'Input fields of the service, e.g. {"text": "..."}.',
                        "minProperties": 1,
                        "additionalProperties": True,
                    },
                    "async": {
                        "type": "boolean",
                        "default": False,
                        "description": (
                            "true: queue the call as a background job and answer 202 at once "
                            "(a long-running service always does). Its input must be JSON."
                        ),
                    },
                    "stream": {
                        "type": "boolean",
                        "default": False,
                        "description": (
                            "true (services that stream, such as chat): answer text/event-stream "
                            "in OpenAI's chat.completion.chunk style as the model writes; the "
                            "last chunk carries usage and credits_charged, then [DONE]."
                        ),
                    },
                },
            }
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "description": "Form fields and files, e.g. image=@photo.jpg.",
                "minProperties": 1,
                "additionalProperties": True,
            }
        },
    },
}
NO_INPUT = "Send at least one input field."


@dataclass(frozen=True)
class RunRequest:
    """What a run's body asks for: the service's inputs, and whether to queue it as a job."""

    inputs: dict[str, Any]
    run_async: bool = False
    stream: bool = False


def _run_request(request: HttpRequest) -> RunRequest:
    """Read a run's body: JSON ``{"input": {...}, "async": false}`` or a multipart form.

    A multipart form carries only inputs (``async`` is JSON's: an upload cannot
    wait in the queue); a long-running service still queues it.
    """
    content_type = request.content_type or ""
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            fields: dict[str, Any] = {name: request.POST[name] for name in request.POST}
            fields.update({name: request.FILES[name] for name in request.FILES})
        except MultiPartParserError:
            raise ServiceInputError("The multipart body cannot be parsed.") from None
        if not fields:
            raise ServiceInputError(f"The form is empty. {NO_INPUT}", details={"input": [NO_INPUT]})
        return RunRequest(_refuse_reserved(fields))
    try:
        body = loads_bounded(request.body or b"null")
    except JsonInputError as error:
        raise ServiceInputError(
            f'{error} Send a JSON object {{"input": {{...}}}} or a multipart form.',
            details={"input": [str(error)]},
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        raise ServiceInputError(
            'Send a JSON object {"input": {...}} or a multipart form.',
            details={"input": ["Expected an object."]},
        )
    if not body["input"]:
        raise ServiceInputError(f"The input is empty. {NO_INPUT}", details={"input": [NO_INPUT]})
    run_async = body.get("async", False)
    if not isinstance(run_async, bool):
        raise ServiceInputError(
            "async must be true or false.", details={"async": ["Expected true or false."]}
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ServiceInputError(
            "stream must be true or false.", details={"stream": ["Expected true or false."]}
        )
    if stream and run_async:
        raise ServiceInputError(
            "A call is either streamed or queued: send stream or async, not both.",
            details={"stream": ["Not with async."]},
        )
    return RunRequest(_refuse_reserved(dict(body["input"])), run_async=run_async, stream=stream)


def _refuse_reserved(fields: dict[str, Any]) -> dict[str, Any]:
    """Refuse input names that ``BaseService.run`` takes as its own arguments."""
    taken = sorted(set(fields) & reserved_input_names())
    if taken:
        raise ServiceInputError(
            f"No service takes an input named {', '.join(taken)}.",
            details={name: ["This name is not an input of any service."] for name in taken},
        )
    return fields


@api.post(
    "/services/{name}/run",
    response={200: RunEnvelope, 202: JobEnvelope, **ERRORS},
    openapi_extra={"requestBody": RUN_REQUEST_BODY},
    operation_id="run_service",
)
def run_service(request: HttpRequest, name: str, response: HttpResponse) -> Any:
    """Run one service: JSON {"input": {...}}, or multipart/form-data for files.

    200 with the result; or 202 with the queued job and its address in
    ``Location``, for "async": true and for every call to a long-running service.
    """
    service = _service(name)
    call = _run_request(request)
    if call.stream:
        return _stream(request, service, call.inputs)
    if call.run_async or service.long_running:
        # Queueing is one short transaction (hold, job, the key's link): no call slot to take.
        key = _key(request)
        with transaction.atomic():
            job = jobs.enqueue_job(service, key.user, origin="api", inputs=call.inputs)
            api_key_job_record(key, job)
        data = _job_data(job, result=True)
        response["Location"] = data["url"]
        return Status(202, {"success": True, "data": data, "error": None})
    with _call_slot(request):
        return _run(request, service, call.inputs)


def _stream(request: HttpRequest, service: BaseService, inputs: dict[str, Any]) -> HttpResponseBase:
    """Answer ``"stream": true`` (``api/streaming.py``): checks and refusals answer as usual;
    the hold and the provider call start when the response does."""
    if not isinstance(service, StreamingService):
        raise ServiceInputError(
            f"The service {service.name} does not stream. Leave out stream.",
            details={"stream": ["This service does not stream."]},
        )
    key = _key(request)
    start = service.start_stream(
        key.user, origin="api", inputs=inputs, on_usage_created=partial(api_key_usage_record, key)
    )
    # Handed back now, not kept for the stream's first step: that saves a pool check,
    # but holds the connection idle until the response starts, and many streams
    # starting at once then wait longer for the pool.
    release_connection()
    return event_stream_response(start.events, service=service.name, model=start.model)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


@api.get("/credits/balance/", response={200: BalanceEnvelope, **ERRORS}, operation_id="balance")
def credit_balance(request: HttpRequest) -> dict[str, Any]:
    """The key owner's credit balance."""
    balance = ledger.balance(_key(request).user)
    return {
        "success": True,
        "data": {
            "total": _money(balance.total),
            "subscription": _money(balance.subscription),
            "pay_as_you_go": _money(balance.pay_as_you_go),
            "reserved": _money(balance.reserved),
            "available": _money(balance.available),
            "credit_system_enabled": bool(settings.CREDIT_SYSTEM_ENABLED),
        },
        "error": None,
    }


class PageQuery(Schema):
    page: int = Field(1, ge=1, le=1_000_000)
    page_size: int = Field(20, ge=1, le=100)


@api.get("/usage/", response={200: UsageEnvelope, **ERRORS}, operation_id="usage")
def usage(request: HttpRequest, query: Query[PageQuery]) -> dict[str, Any]:
    """The key owner's service calls (web and API), newest first, one page."""
    return _page(service_selectors.usages(_key(request).user), query, _usage_data)


def _usage_data(item: ServiceUsage) -> dict[str, Any]:
    return {
        "id": item.pk,
        "service": item.service.name,
        "origin": item.origin,
        "status": item.status,
        "credits_charged": str(item.credits_charged),
        "duration_ms": item.duration_ms,
        "created_at": item.created_at,
    }


def _page(
    rows: QuerySet[Any], query: PageQuery, describe: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """One page of ``rows`` in the list envelope the usage and jobs endpoints share."""
    total = rows.count()
    start = (query.page - 1) * query.page_size
    items = list(rows[start : start + query.page_size])
    return {
        "success": True,
        "data": {
            "items": [describe(item) for item in items],
            "page": query.page,
            "page_size": query.page_size,
            "total": total,
            "has_next": start + len(items) < total,
        },
        "error": None,
    }


# --------------------------------------------------------------------------- jobs

NO_SUCH_JOB = "No such job. List yours with GET /api/jobs/."


def _job_data(job: Job, *, result: bool) -> dict[str, Any]:
    """The API's view of ``job`` (``JobOut``; without ``result`` for a list's ``JobSummaryOut``)."""
    url = reverse("api:job", kwargs={"job_id": job.pk})
    data: dict[str, Any] = {
        "id": job.pk,
        "url": url,
        "service": job.service.name,
        "origin": job.origin,
        "state": job.state,
        "progress": job.progress,
        "message": job.progress_message,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
        "units": job.units_billable,
        "units_processed": job.units_processed,
        "credits_held": _money(job.credits_held),
        "credits_charged": _money(job.credits_charged),
        "error": job.error or None,
        "download_url": reverse("api:job_file", kwargs={"job_id": job.pk})
        if job.result_file
        else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
    if result:
        data["result"] = job.result
    return data


def _own_job(request: HttpRequest, job_id: uuid.UUID) -> Job:
    job = service_selectors.user_job(_key(request).user, job_id)
    if job is None:
        raise ApiError(404, "not_found", NO_SUCH_JOB)
    return job


@api.get("/jobs/", response={200: JobListEnvelope, **ERRORS}, operation_id="list_jobs")
def list_jobs(request: HttpRequest, query: Query[PageQuery]) -> dict[str, Any]:
    """The key owner's jobs (started from the web or the API), newest first, one page."""
    return _page(service_selectors.jobs(_key(request).user), query, _job_list_item)


def _job_list_item(job: Job) -> dict[str, Any]:
    return _job_data(job, result=False)


@api.get(
    "/jobs/{job_id}",
    response={200: JobEnvelope, **ERRORS},
    operation_id="get_job",
    url_name="job",
)
def get_job(request: HttpRequest, job_id: uuid.UUID) -> dict[str, Any]:
    """One of the key owner's jobs: its state, progress and, once it ended, result or error."""
    return {
        "success": True,
        "data": _job_data(_own_job(request, job_id), result=True),
        "error": None,
    }


@api.delete(
    "/jobs/{job_id}",
    response={200: JobEnvelope, 202: JobEnvelope, 409: ErrorEnvelope, **ERRORS},
    operation_id="cancel_job",
)
def cancel_job(request: HttpRequest, job_id: uuid.UUID) -> Status[dict[str, Any]]:
    """Cancel one of the key owner's jobs.

    200: it was queued and is cancelled, its credits released. 202: it is
    running and stops at its next progress report, charged for the work done.
    409: it has already ended.
    """
    job = jobs.cancel_job(_key(request).user, job_id)
    status = 200 if job.state == Job.State.CANCELLED else 202
    return Status(status, {"success": True, "data": _job_data(job, result=True), "error": None})


JOB_FILE_RESPONSES = {
    "responses": {
        200: {
            "description": (
                "The job's result file, as an attachment; its type in Content-Type "
                "(text/csv for batch_sentiment_analysis)."
            ),
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


@api.get(
    "/jobs/{job_id}/file",
    response=ERRORS,
    operation_id="download_job_file",
    url_name="job_file",
    openapi_extra=JOB_FILE_RESPONSES,
)
def download_job_file(request: HttpRequest, job_id: uuid.UUID) -> HttpResponseBase:
    """Download the result file of one of the key owner's jobs (see its download_url)."""
    answer = result_file_response(_own_job(request, job_id))
    if answer is None:
        raise ApiError(404, "not_found", "This job has no file to download.")
    return answer


@api.api_operation(
    ["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", include_in_schema=False, auth=None
)
def not_found(request: HttpRequest, rest: str) -> None:
    """Answer any other /api/ path with the envelope's 404."""
    raise ApiError(404, "not_found", "No such endpoint. See /api/docs.")
