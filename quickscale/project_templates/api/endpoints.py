"""The HTTP API under /api/ (django-ninja): thin endpoints over services and the ledger.

Authentication is ``Authorization: Bearer <API key>``; the same check counts
the request against the key's rate limit (``core.body_limit`` limits the body
before Django reads it). Every answer is the envelope of ``api/schemas.py``;
errors are mapped in one place (``api/errors.py``). OpenAPI at /api/openapi.json,
interactive docs at /api/docs (django-ninja's bundled Swagger UI, local files).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI, Query, Schema
from ninja.openapi.schema import OpenAPISchema
from ninja.security.http import HttpAuthBase
from pydantic import Field

from api.errors import ERROR_STATUSES, ApiError, install_handlers
from api.models import APIKey
from api.parser import BoundedJsonParser
from api.schemas import (
    BalanceEnvelope,
    ErrorEnvelope,
    RunEnvelope,
    ServiceListEnvelope,
    TextIn,
    UsageEnvelope,
)
from api.services import api_key_authenticate, api_key_usage_record
from common import ratelimit
from common.concurrency import CallSlotsBusy, call_slot
from common.json_input import MAX_DEPTH, MAX_INT_DIGITS, JsonInputError, loads_bounded
from credits import ledger
from services import selectors as service_selectors
from services.base import BaseService, reserved_input_names
from services.exceptions import ServiceInputError
from services.registry import create_service_instance

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
    """NinjaAPI that also documents the Retry-After header of 429 and 503 answers."""

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
    """List the active services and their cost per call."""
    return {
        "success": True,
        "data": [
            {
                "name": service.name,
                "description": service.description,
                "credit_cost": str(service.credit_cost),
            }
            for service in service_selectors.active_services()
        ],
        "error": None,
    }


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
                    }
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


def _inputs(request: HttpRequest) -> dict[str, Any]:
    """Read a run's inputs from JSON ``{"input": {...}}`` or a multipart form."""
    content_type = request.content_type or ""
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            fields: dict[str, Any] = {name: request.POST[name] for name in request.POST}
            fields.update({name: request.FILES[name] for name in request.FILES})
        except MultiPartParserError:
            raise ServiceInputError("The multipart body cannot be parsed.") from None
        if not fields:
            raise ServiceInputError(f"The form is empty. {NO_INPUT}", details={"input": [NO_INPUT]})
        return _refuse_reserved(fields)
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
    return _refuse_reserved(dict(body["input"]))


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
    response={200: RunEnvelope, **ERRORS},
    openapi_extra={"requestBody": RUN_REQUEST_BODY},
    operation_id="run_service",
)
def run_service(request: HttpRequest, name: str) -> dict[str, Any]:
    """Run one service: JSON {"input": {...}}, or multipart/form-data for files."""
    service = _service(name)
    with _call_slot(request):
        return _run(request, service, _inputs(request))


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
    rows = service_selectors.usages(_key(request).user)
    total = rows.count()
    start = (query.page - 1) * query.page_size
    items = list(rows[start : start + query.page_size])
    return {
        "success": True,
        "data": {
            "items": [
                {
                    "id": item.pk,
                    "service": item.service.name,
                    "origin": item.origin,
                    "status": item.status,
                    "credits_charged": str(item.credits_charged),
                    "duration_ms": item.duration_ms,
                    "created_at": item.created_at,
                }
                for item in items
            ],
            "page": query.page,
            "page_size": query.page_size,
            "total": total,
            "has_next": start + len(items) < total,
        },
        "error": None,
    }


@api.api_operation(
    ["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", include_in_schema=False, auth=None
)
def not_found(request: HttpRequest, rest: str) -> None:
    """Answer any other /api/ path with the envelope's 404."""
    raise ApiError(404, "not_found", "No such endpoint. See /api/docs.")
