"""LLM services through the fake provider: hold, call, settle; every refusal charges nothing."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from common.testing.fake_llm import ANTHROPIC_MODEL, Script
from credits import ledger
from credits.exceptions import InsufficientCredits
from credits.models import CreditHold, LedgerEntry
from llm import metering
from llm.providers import ChatMessage, LLMRequest, ProviderError, TokenUsage
from llm.tests.conftest import EXTRACTION, GOOD_EXTRACTION, GOOD_REPLY, TEXT
from services.base import ServiceResult
from services.exceptions import ServiceFailed, ServiceInputError, ServiceNotConfigured
from services.models import ServiceUsage
from services.registry import create_service_instance
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


def run(user, **inputs) -> ServiceResult:
    return create_service_instance(EXTRACTION).run(user, **inputs)


def nothing_charged(user, balance=Decimal(100)) -> None:
    assert ledger.balance(user).available == balance
    assert not LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.CONSUME).exists()
    assert not CreditHold.objects.filter(user=user, state=CreditHold.State.OPEN).exists()


def test_a_call_holds_its_most_then_is_charged_the_reported_usage(extraction, rich_user, fake_llm):
    fake_llm.reply(GOOD_REPLY, input_tokens=500, output_tokens=250)
    outcome = run(rich_user, text=TEXT)
    # 500 input tokens at 1 credit per 1,000 + 250 output tokens at 2 per 1,000.
    assert outcome.usage.credits_charged == Decimal("1.00")
    assert outcome.result["data"] == GOOD_EXTRACTION
    assert outcome.result["credits_charged"] == "1.00"
    assert ledger.balance(rich_user).available == Decimal("99.00")
    hold = CreditHold.objects.get(user=rich_user)
    request = LLMRequest(
        messages=(ChatMessage("user", f"Extract the entities of this text:\n\n{TEXT}"),),
        model=extraction.model,
        max_tokens=extraction.max_tokens,
        system=extraction.system_prompt,
        json_schema=extraction.json_schema,
    )
    assert hold.state == CreditHold.State.SETTLED
    assert hold.amount == metering.max_cost(extraction, request, attempts=2)
    usage = ServiceUsage.objects.get(pk=outcome.usage.pk)
    assert usage.status == ServiceUsage.Status.SUCCEEDED
    assert usage.ledger_entry is not None and usage.ledger_entry.amount == Decimal("-1.00")
    sent = fake_llm.requests[0].body
    assert sent["response_format"]["json_schema"]["schema"] == extraction.json_schema
    assert TEXT in sent["messages"][-1]["content"]


def test_the_same_service_on_anthropic(extraction, rich_user, fake_llm):
    extraction.provider, extraction.model = "anthropic", ANTHROPIC_MODEL
    extraction.save()
    fake_llm.reply(GOOD_REPLY, input_tokens=1000, output_tokens=1000)
    outcome = run(rich_user, text=TEXT)
    assert outcome.usage.credits_charged == Decimal("3.00")
    assert fake_llm.requests[0].path == "/v1/messages"


def test_sub_cent_costs_are_rounded_up_never_down(extraction, rich_user, fake_llm):
    fake_llm.reply(GOOD_REPLY, input_tokens=1, output_tokens=1)
    assert run(rich_user, text=TEXT).usage.credits_charged == Decimal("0.01")


def test_a_balance_below_the_hold_is_refused_before_the_provider_is_called(extraction, fake_llm):
    poor = make_user()
    ledger.grant(poor, Decimal("0.50"), source="admin", reference="poor-grant")
    with pytest.raises(InsufficientCredits):
        run(poor, text=TEXT)
    assert fake_llm.requests == []
    assert not ServiceUsage.objects.filter(user=poor).exists()
    assert ledger.balance(poor).available == Decimal("0.50")


def test_a_reply_failing_the_schema_is_retried_once_without_charging_its_output(
    extraction, rich_user, fake_llm
):
    fake_llm.queue(
        Script(text='{"people": "not a list"}', input_tokens=400, output_tokens=900),
        Script(text=GOOD_REPLY, input_tokens=400, output_tokens=100),
    )
    outcome = run(rich_user, text=TEXT)
    assert outcome.result["data"] == GOOD_EXTRACTION
    assert len(fake_llm.requests) == 2
    # Both prompts were read (800 input tokens: 0.80); only the good reply's 100
    # output tokens are charged (0.20), not the failed one's 900 (1.80).
    assert outcome.usage.credits_charged == Decimal("1.00")


def test_a_reply_that_is_not_json_then_a_fenced_good_one_passes(extraction, rich_user, fake_llm):
    fake_llm.queue(
        Script(text="Sure! Here are the entities."),
        Script(text=f"```json\n{GOOD_REPLY}\n```"),
    )
    assert run(rich_user, text=TEXT).result["data"] == GOOD_EXTRACTION


def test_two_replies_failing_the_schema_fail_the_call_uncharged(extraction, rich_user, fake_llm):
    fake_llm.default = Script(text='{"people": []}', output_tokens=700)
    with pytest.raises(ServiceFailed) as caught:
        run(rich_user, text=TEXT)
    assert len(fake_llm.requests) == 2
    assert caught.value.usage.status == ServiceUsage.Status.FAILED
    assert "schema" in caught.value.usage.error
    nothing_charged(rich_user)
    assert CreditHold.objects.get(user=rich_user).state == CreditHold.State.RELEASED


@pytest.mark.parametrize("status", [429, 500])
def test_a_provider_error_charges_nothing(extraction, rich_user, fake_llm, status):
    fake_llm.fail(status)
    with pytest.raises(ServiceFailed) as caught:
        run(rich_user, text=TEXT)
    assert isinstance(caught.value.__cause__, ProviderError)
    assert caught.value.__cause__.status == status
    nothing_charged(rich_user)


def test_an_unknown_model_is_a_provider_error_and_charges_nothing(extraction, rich_user, fake_llm):
    extraction.model = "gpt-nonexistent"
    extraction.save()
    with pytest.raises(ServiceFailed) as caught:
        run(rich_user, text=TEXT)
    cause = caught.value.__cause__
    assert isinstance(cause, ProviderError) and cause.status == 404
    assert "gpt-nonexistent" in cause.message
    nothing_charged(rich_user)


def test_a_provider_timeout_charges_nothing(extraction, rich_user, fake_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    fake_llm.reply(GOOD_REPLY, hang=3)
    with pytest.raises(ServiceFailed):
        run(rich_user, text=TEXT)
    nothing_charged(rich_user)


def test_a_text_beyond_the_services_input_limit_is_refused_before_any_hold(
    extraction, rich_user, fake_llm
):
    extraction.max_input_chars = 100
    extraction.save()
    with pytest.raises(ServiceInputError) as caught:
        run(rich_user, text="x" * 101)
    assert "limit is 100" in caught.value.details["text"][0]
    assert not CreditHold.objects.exists() and fake_llm.requests == []


def test_a_prompt_beyond_the_models_context_is_refused_before_any_hold(
    extraction, rich_user, fake_llm
):
    extraction.context_window = 2000
    extraction.max_tokens = extraction.max_tokens_cap = 1000
    extraction.save()
    with pytest.raises(ServiceInputError) as caught:
        run(rich_user, text="word " * 250)
    assert "context of 2000 tokens" in caught.value.details["text"][0]
    assert not CreditHold.objects.exists() and fake_llm.requests == []


@pytest.mark.parametrize("max_tokens", [0, -5, 4097, "many", 1.5])
def test_max_tokens_must_be_from_1_to_the_cap(extraction, rich_user, fake_llm, max_tokens):
    assert extraction.max_tokens_cap == 4096
    with pytest.raises(ServiceInputError) as caught:
        run(rich_user, text=TEXT, max_tokens=max_tokens)
    assert "from 1 to 4096" in caught.value.details["max_tokens"][0]
    assert not CreditHold.objects.exists() and fake_llm.requests == []


def test_max_tokens_asked_for_is_sent_and_held(extraction, rich_user, fake_llm):
    fake_llm.reply(GOOD_REPLY)
    run(rich_user, text=TEXT, max_tokens=4096)
    assert fake_llm.requests[0].body["max_tokens"] == 4096
    # The hold covered 4,096 output tokens at 2 credits per 1,000: more than 8.19.
    assert CreditHold.objects.get(user=rich_user).amount > Decimal("8.19")


def test_an_unconfigured_provider_refuses_the_call_and_names_the_variable(
    extraction, rich_user, settings
):
    settings.OPENAI_API_KEY = settings.OPENAI_BASE_URL = ""
    service = create_service_instance(EXTRACTION)
    assert "set OPENAI_API_KEY" in service.setup_problem()
    with pytest.raises(ServiceNotConfigured) as caught:
        run(rich_user, text=TEXT)
    assert "OPENAI_API_KEY" in caught.value.message
    nothing_charged(rich_user)
    assert not ServiceUsage.objects.exists()


def test_a_free_service_holds_and_charges_nothing(extraction, rich_user, fake_llm):
    extraction.input_price_per_1k = extraction.output_price_per_1k = Decimal("0")
    extraction.save()
    fake_llm.reply(GOOD_REPLY)
    outcome = run(rich_user, text=TEXT)
    assert outcome.usage.credits_charged == Decimal("0.00")
    assert not CreditHold.objects.exists()


def test_the_prompt_estimate_is_an_upper_bound_of_the_fakes_count(extraction):
    messages = (ChatMessage("user", "héllo wörld, " * 50),)
    words = sum(len(m.content.split()) for m in messages)
    assert metering.estimate_prompt_tokens(messages, "sys") >= words
    assert metering.estimate_prompt_tokens(messages, "sys") >= len(messages[0].content.encode())


def test_settle_usage_and_release_close_the_hold_once(extraction, rich_user):
    request = LLMRequest(messages=(ChatMessage("user", "hi"),), model="m", max_tokens=100)
    key = metering.open_hold(rich_user, EXTRACTION, extraction, request)
    assert key is not None
    charged = metering.settle_usage(key, extraction, TokenUsage(1000, 500))
    assert charged == Decimal("2.00")
    assert metering.settle_usage(key, extraction, TokenUsage(1000, 500)) == Decimal("2.00")
    metering.release(key)  # a settled hold stays settled
    assert ledger.balance(rich_user).available == Decimal("98.00")


def test_the_extraction_result_is_json_serialisable(extraction, rich_user, fake_llm):
    fake_llm.reply(GOOD_REPLY)
    json.dumps(run(rich_user, text=TEXT).result)


def test_a_job_may_run_as_long_as_the_provider_and_its_retries(extraction, settings):
    settings.LLM_REQUEST_TIMEOUT_SECONDS, settings.LLM_MAX_RETRIES = 200, 2
    assert create_service_instance(EXTRACTION).run_time_limit() >= 600
