"""API errors and the one place that turns every error into the envelope and a status."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousMultipartForm,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from common.json_input import JsonInputError
from common.outage import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS
from credits.exceptions import InsufficientCredits
from llm.providers import ProviderError
from services.exceptions import (
    JobAlreadyFinished,
    JobNotFound,
    JobNotSupported,
    ServiceFailed,
    ServiceInputError,
    ServiceNotConfigured,
    ServiceUnavailable,
    TooManyActiveJobs,
    UnknownService,
)

logger = logging.getLogger(__name__)

# What Django raises while reading a form body it refuses to read further.
UNREADABLE_FORM = (TooManyFieldsSent, TooManyFilesSent, SuspiciousMultipartForm)

# Every status an endpoint can answer besides 200, declared in the OpenAPI schema
# (cancelling a job can also answer 409: that operation declares it itself).
ERROR_STATUSES = frozenset({401, 402, 404, 413, 422, 429, 500, 502, 503})


class ApiError(Exception):
    """An error answer: status, stable code, message for people, optional details/headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "success": False,
        "data": None,
        "error": {"code": code, "message": message, "details": details or {}},
    }


def _field_details(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        # ninja prefixes body fields with "body" and the parameter name.
        if location[:1] == ["body"]:
            location = location[2:] or location[1:]
        elif location[:1] in (["query"], ["path"]):
            location = location[1:]
        fields.setdefault(".".join(location) or "body", []).append(str(error.get("msg", "")))
    return fields


def to_api_error(error: Exception) -> ApiError | None:
    """Map a domain or framework error to an ``ApiError``; None for unexpected errors."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, NinjaValidationError):
        return ApiError(
            422,
            "validation_error",
            "The request is not valid. Fix the fields listed in details.",
            details={"fields": _field_details(list(error.errors))},
        )
    if isinstance(error, ServiceInputError):
        return ApiError(422, "invalid_input", error.message, details={"fields": error.details})
    if isinstance(error, InsufficientCredits):
        return ApiError(
            402,
            "insufficient_credits",
            str(error),
            details={"required": str(error.required), "available": str(error.available)},
        )
    if isinstance(error, JobNotFound):
        return ApiError(404, "not_found", str(error))
    if isinstance(error, JobAlreadyFinished):
        return ApiError(409, "job_finished", str(error), details={"state": error.state})
    if isinstance(error, JobNotSupported):
        return ApiError(422, "async_not_supported", str(error))
    if isinstance(error, TooManyActiveJobs):
        # No Retry-After: when a job ends is not known; the limit is in details.
        return ApiError(429, "too_many_active_jobs", str(error), details={"limit": error.limit})
    if isinstance(error, ServiceUnavailable | UnknownService | Http404):
        message = str(error) if not isinstance(error, Http404) else "Not found."
        return ApiError(404, "not_found", message)
    if isinstance(error, ServiceFailed) and isinstance(error.__cause__, ProviderError):
        # The model's provider failed (429, 5xx, unknown model, timeout): a bad gateway.
        cause = error.__cause__
        return ApiError(
            502,
            "provider_error",
            f"{cause.message} No credits were charged.",
            details={"usage_id": error.usage.pk, "provider_status": cause.status},
        )
    if isinstance(error, ServiceFailed):
        return ApiError(500, "service_failed", str(error), details={"usage_id": error.usage.pk})
    if isinstance(error, ServiceNotConfigured):
        return ApiError(503, "not_configured", f"{error.message} Nothing was charged.")
    if isinstance(error, RequestDataTooBig):
        return ApiError(413, "payload_too_large", "The request body is too large. Send less data.")
    if isinstance(error, DATABASE_UNAVAILABLE):
        return ApiError(
            503,
            "service_unavailable",
            f"The service is briefly unavailable. Retry in {RETRY_AFTER_SECONDS} s.",
            details={"retry_after": RETRY_AFTER_SECONDS},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, AuthenticationError):
        return ApiError(
            401, "invalid_api_key", "Send a valid API key as 'Authorization: Bearer <key>'."
        )
    if isinstance(error, UNREADABLE_FORM):
        return ApiError(
            422,
            "validation_error",
            "The form cannot be read (too many fields or files, or malformed). Send less.",
            details={"fields": {"body": [str(error)]}},
        )
    if isinstance(error, HttpError) and isinstance(error.__cause__, JsonInputError):
        # ninja's answer to a body its parser (api/parser.py) refused: say why.
        return ApiError(
            422,
            "validation_error",
            f"The request body cannot be parsed. {error.__cause__}",
            details={"fields": {"body": [str(error.__cause__)]}},
        )
    if isinstance(error, HttpError) and error.status_code == 400:
        # ninja's answer to a body it cannot parse (not JSON, wrong encoding).
        return ApiError(
            422,
            "validation_error",
            "The request body cannot be parsed. Send JSON.",
            details={"fields": {"body": [str(error)]}},
        )
    if isinstance(error, HttpError):
        return ApiError(error.status_code, "http_error", str(error))
    return None


def install_handlers(api: NinjaAPI) -> None:
    """Route every error type through the envelope."""

    def handle(request: HttpRequest, error: Exception | type[Exception]) -> HttpResponse:
        if isinstance(error, type):
            error = error()
        api_error = to_api_error(error)
        if api_error is None:
            raise error
        if api_error.status == 503:
            logger.warning(
                "database unavailable: answered 503",
                extra={"path": request.path, "error": str(error).strip()},
            )
        response = api.create_response(
            request,
            envelope(api_error.code, api_error.message, api_error.details),
            status=api_error.status,
        )
        for name, value in api_error.headers.items():
            response[name] = value
        return response

    for error_type in (
        ApiError,
        NinjaValidationError,
        ServiceInputError,
        InsufficientCredits,
        ServiceUnavailable,
        UnknownService,
        ServiceFailed,
        ServiceNotConfigured,
        JobNotFound,
        JobAlreadyFinished,
        JobNotSupported,
        TooManyActiveJobs,
        Http404,
        RequestDataTooBig,
        *UNREADABLE_FORM,
        AuthenticationError,
        HttpError,
        *DATABASE_UNAVAILABLE,
    ):
        api.add_exception_handler(error_type, handle)
