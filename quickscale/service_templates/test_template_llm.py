"""Tests of service_template_name (generated with it; extend them as the service grows).

They run against the test suite's fake LLM provider (``fake_llm``: a local server
speaking OpenAI's and Anthropic's protocols), so they need no network and no key.
"""

import json
from decimal import Decimal
from typing import Any

import pytest

from common.testing.fake_llm import OPENAI_MODEL, FakeLLM
from credits import ledger
from llm.service import LLMService
from services.configuration import ensure_service_rows
from services.exceptions import ServiceInputError
from services.models import ServiceUsage
from services.registry import create_service_instance, registered_services
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db
NAME = "service_template_name"

GOOD_INPUT: dict[str, Any] = {"text": "Hello world. Nice to meet you."}  # quickscale:good-input
BAD_INPUT: dict[str, Any] = {"text": ""}  # quickscale:bad-input
# A reply that matches the service's JSON Schema: change it with the schema.
GOOD_REPLY = json.dumps({"title": "A first program", "keywords": ["history", "computing"]})


def _service() -> LLMService:
    """The service, configured to call the fake provider's model."""
    ensure_service_rows((NAME,))
    service = create_service_instance(NAME)
    assert isinstance(service, LLMService)
    config = service.llm_config()
    config.provider, config.model = "openai", OPENAI_MODEL
    config.save()
    return service


def test_service_template_name_is_registered_and_gets_a_row_at_bootstrap() -> None:
    assert NAME in registered_services()
    assert NAME in ensure_service_rows((NAME,))


def test_service_template_name_runs_and_charges_the_tokens_used(fake_llm: FakeLLM) -> None:
    service = _service()
    user = make_user()
    ledger.grant(user, Decimal(100), source="admin", reference=f"test-{NAME}")
    fake_llm.reply(GOOD_REPLY, input_tokens=1000, output_tokens=1000)
    outcome = service.run(user, **GOOD_INPUT)
    assert outcome.usage.status == ServiceUsage.Status.SUCCEEDED
    assert outcome.result
    config = service.llm_config()
    cost = ledger.round_up_cost(config.input_price_per_1k + config.output_price_per_1k)
    assert outcome.usage.credits_charged == cost
    assert ledger.balance(user).total == Decimal(100) - cost


def test_service_template_name_refuses_bad_input_before_charging(fake_llm: FakeLLM) -> None:
    with pytest.raises(ServiceInputError):
        _service().validate_input(**BAD_INPUT)
