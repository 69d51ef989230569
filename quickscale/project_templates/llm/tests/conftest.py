"""Fixtures of the llm app's tests: the extraction service pointed at the fake provider."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from common.testing.fake_llm import OPENAI_MODEL
from credits import ledger
from llm.models import LLMServiceConfig
from llm.service import LLMService
from services.configuration import ensure_service_rows
from services.registry import create_service_instance
from users.tests.factories import make_user

EXTRACTION = "structured_extraction"
GOOD_EXTRACTION = {
    "people": ["Ada Lovelace"],
    "organizations": [],
    "places": ["London"],
    "dates": ["1843"],
    "amounts": [],
    "summary": "Ada wrote notes.",
}
GOOD_REPLY = json.dumps(GOOD_EXTRACTION)
TEXT = "Ada Lovelace published her notes in London in 1843."


def configure_extraction() -> LLMServiceConfig:
    """The extraction service's configuration: the fake's OpenAI model, 1 and 2 credits per 1k."""
    ensure_service_rows((EXTRACTION,))
    service = create_service_instance(EXTRACTION)
    assert isinstance(service, LLMService)
    config = service.llm_config()
    config.model = OPENAI_MODEL
    config.input_price_per_1k = Decimal("1")
    config.output_price_per_1k = Decimal("2")
    config.save()
    return config


@pytest.fixture
def extraction(db, fake_llm) -> LLMServiceConfig:
    return configure_extraction()


@pytest.fixture
def rich_user(db):
    """An account with 100 credits."""
    user = make_user()
    ledger.grant(user, Decimal(100), source="admin", reference=f"test-grant-{user.pk}")
    return user
