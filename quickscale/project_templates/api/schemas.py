"""Request and response shapes of the API: one envelope for every answer.

Every response is ``{"success", "data", "error"}``: ``data`` on success,
``error`` (``code``, ``message``, ``details``) on failure. Amounts of credits
are strings with 2 decimals, never floats.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from services.validation import TEXT_JSON_SCHEMA


class ErrorBody(Schema):
    code: str = Field(description="Stable machine-readable error code.")
    message: str = Field(description="What happened and what to do, for people.")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorEnvelope(Schema):
    success: Literal[False] = False
    data: None = None
    error: ErrorBody


class TextIn(Schema):
    operation: Literal["analyze", "summarize", "count"] = Field(
        description="analyze: sentiment; summarize: extractive summary; count: word counts."
    )
    # The services check the text (with their own messages); the schema states the same rules.
    text: str = Field(json_schema_extra=TEXT_JSON_SCHEMA)


class RunOut(Schema):
    service: str
    usage_id: int
    credits_charged: str
    result: dict[str, Any]


class RunEnvelope(Schema):
    success: Literal[True] = True
    data: RunOut
    error: None = None


class ServiceOut(Schema):
    name: str
    description: str
    credit_cost: str = Field(description="Credits per call; per unit of work for a job.")
    runs_as_job: bool = Field(
        description="true: every call queues a background job (202) and is charged per unit done."
    )


class ServiceListEnvelope(Schema):
    success: Literal[True] = True
    data: list[ServiceOut]
    error: None = None


class BalanceOut(Schema):
    total: str
    subscription: str
    pay_as_you_go: str
    reserved: str = Field(description="Part of total held for jobs still running.")
    available: str = Field(description="total minus reserved: what can be spent now.")
    credit_system_enabled: bool


class BalanceEnvelope(Schema):
    success: Literal[True] = True
    data: BalanceOut
    error: None = None


class UsageOut(Schema):
    id: int
    service: str
    origin: str
    status: str
    credits_charged: str
    duration_ms: int
    created_at: datetime


class UsagePage(Schema):
    items: list[UsageOut]
    page: int
    page_size: int
    total: int
    has_next: bool


class UsageEnvelope(Schema):
    success: Literal[True] = True
    data: UsagePage
    error: None = None


# --------------------------------------------------------------------------- jobs

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobSummaryOut(Schema):
    id: uuid.UUID
    url: str = Field(description="This job's address in the API.")
    service: str
    origin: str = Field(description="Where it was started: web or api.")
    state: JobState = Field(
        description="queued, running, then succeeded, failed or cancelled (final states)."
    )
    progress: int = Field(ge=0, le=100, description="Percent done, as the service reports it.")
    message: str = Field(description="The service's last progress message.")
    cancel_requested: bool = Field(
        description="True once cancelled while running: it stops at its next progress report."
    )
    attempts: int = Field(
        description="Runs started (more than 1: its worker stopped, it ran again)."
    )
    units: int = Field(description="Units of work the job was priced for (texts, pages...).")
    units_processed: int
    credits_held: str = Field(description="Credits held when it was queued: its highest price.")
    credits_charged: str = Field(description="Credits charged once it ended (0.00 before).")
    error: str | None = Field(description="Why it failed or was stopped; null otherwise.")
    download_url: str | None = Field(
        description="Address of its result file (same API key), once it succeeded with one."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobOut(JobSummaryOut):
    result: dict[str, Any] | None = Field(
        description="The service's result once it succeeded; what it kept if cancelled mid-run."
    )


class JobEnvelope(Schema):
    success: Literal[True] = True
    data: JobOut
    error: None = None


class JobPage(Schema):
    items: list[JobSummaryOut] = Field(description="Jobs without their results: GET a job for it.")
    page: int
    page_size: int
    total: int
    has_next: bool


class JobListEnvelope(Schema):
    success: Literal[True] = True
    data: JobPage
    error: None = None
