"""Request and response shapes of the API: one envelope for every answer.

Every response is ``{"success", "data", "error"}``: ``data`` on success,
``error`` (``code``, ``message``, ``details``) on failure. Amounts of credits
are strings with 2 decimals, never floats.
"""

from __future__ import annotations

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
    credit_cost: str


class ServiceListEnvelope(Schema):
    success: Literal[True] = True
    data: list[ServiceOut]
    error: None = None


class BalanceOut(Schema):
    total: str
    subscription: str
    pay_as_you_go: str
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
