"""A server that reports no ``usage`` for a whole (non-streamed) reply: the call is charged
the counted tokens, as a stream without usage is, never nothing."""

from __future__ import annotations

import logging
import math
from decimal import Decimal

import pytest

from common.testing.fake_llm import Script
from credits import ledger
from credits.models import CreditHold
from llm import metering
from llm.providers import TokenUsage
from llm.service import LLMService
from llm.tests.conftest import EXTRACTION, GOOD_EXTRACTION, GOOD_REPLY, TEXT
from services.models import ServiceUsage
from services.registry import create_service_instance

pytestmark = pytest.mark.django_db


def service() -> LLMService:
    instance = create_service_instance(EXTRACTION)
    assert isinstance(instance, LLMService)
    return instance


def prompt_estimate(max_tokens: int | None = None) -> int:
    """The upper-bound estimate of the extraction prompt's messages and system prompt."""
    instance = service()
    inputs: dict[str, str | int] = {"text": TEXT}
    if max_tokens is not None:
        inputs["max_tokens"] = max_tokens
    request = instance.build_request(instance.validate_input(**inputs))
    return metering.estimate_prompt_tokens(request.messages, request.system)


def test_a_reply_without_usage_is_charged_its_counted_tokens(
    extraction, rich_user, fake_llm, caplog
):
    fake_llm.reply(GOOD_REPLY, include_usage=False)
    with caplog.at_level(logging.WARNING, logger="llm.service"):
        outcome = service().run(rich_user, text=TEXT)
    assert outcome.result["data"] == GOOD_EXTRACTION
    counted = TokenUsage(
        input_tokens=outcome.result["input_tokens"],
        output_tokens=outcome.result["output_tokens"],
    )
    # Input: the prompt's upper-bound estimate; output: one token per 4 bytes of the reply.
    assert counted.input_tokens >= prompt_estimate()
    assert counted.output_tokens == math.ceil(len(GOOD_REPLY.encode()) / 4)
    charged = metering.cost_of(extraction, counted)
    assert charged > 0
    assert outcome.usage.credits_charged == charged
    assert outcome.result["credits_charged"] == str(charged)
    hold = CreditHold.objects.get(user=rich_user)
    assert hold.state == CreditHold.State.SETTLED and charged <= hold.amount
    assert ledger.balance(rich_user).available == Decimal(100) - charged
    usage = ServiceUsage.objects.get(pk=outcome.usage.pk)
    assert usage.status == ServiceUsage.Status.SUCCEEDED and usage.credits_charged == charged
    warnings = [r for r in caplog.records if r.getMessage().startswith("llm reply without usage")]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_a_reply_cut_at_max_tokens_without_usage_is_charged_all_of_them(
    extraction, rich_user, fake_llm
):
    extraction.json_schema = None  # a free-text service
    extraction.save()
    fake_llm.reply("A short cut answer", include_usage=False, finish_reason="length")
    outcome = service().run(rich_user, text=TEXT, max_tokens=40)
    assert outcome.result["finish_reason"] == "length"
    assert outcome.result["output_tokens"] == 40
    assert outcome.result["input_tokens"] >= prompt_estimate(max_tokens=40)
    expected = metering.cost_of(
        extraction, TokenUsage(outcome.result["input_tokens"], output_tokens=40)
    )
    assert outcome.usage.credits_charged == expected > 0
    assert ledger.balance(rich_user).available == Decimal(100) - expected


def test_a_schema_retry_without_usage_is_charged_both_prompts_and_the_good_reply(
    extraction, rich_user, fake_llm
):
    fake_llm.queue(
        Script(text="Sure! Here are the entities.", include_usage=False),
        Script(text=GOOD_REPLY, include_usage=False),
    )
    outcome = service().run(rich_user, text=TEXT)
    assert outcome.result["data"] == GOOD_EXTRACTION
    assert len(fake_llm.requests) == 2
    one_prompt = outcome.result["input_tokens"]  # the good reply's own counted input
    assert one_prompt >= prompt_estimate()
    billed = TokenUsage(
        input_tokens=2 * one_prompt,
        output_tokens=math.ceil(len(GOOD_REPLY.encode()) / 4),
    )
    assert outcome.usage.credits_charged == metering.cost_of(extraction, billed)
