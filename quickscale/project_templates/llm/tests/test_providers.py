"""The provider layer through the official SDKs, against the local fake provider."""

from __future__ import annotations

import time

import pytest

from common.testing.asgi import run_in_own_loop
from common.testing.fake_llm import ANTHROPIC_MODEL, OPENAI_MODEL, Script
from llm.providers import (
    ChatMessage,
    LLMRequest,
    ProviderError,
    ProviderNotConfigured,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TokenUsage,
    UnknownProvider,
    provider_for,
)

MODELS = {"openai": OPENAI_MODEL, "anthropic": ANTHROPIC_MODEL}


def ask(provider: str, text: str = "Say hello to me", **options) -> LLMRequest:
    return LLMRequest(
        messages=(ChatMessage("user", text),),
        model=options.pop("model", MODELS[provider]),
        max_tokens=options.pop("max_tokens", 50),
        temperature=0.2,
        **options,
    )


async def collect(provider: str, request: LLMRequest) -> list[StreamEvent]:
    return [event async for event in provider_for(provider).astream(request)]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_complete_returns_text_and_the_providers_usage(fake_llm, provider):
    fake_llm.reply("Hello there, friend.", input_tokens=7, output_tokens=5)
    reply = provider_for(provider).complete(ask(provider, system="Be brief."))
    assert reply.text == "Hello there, friend."
    assert reply.usage == TokenUsage(input_tokens=7, output_tokens=5)
    assert reply.model == MODELS[provider]
    sent = fake_llm.requests[0].body
    assert sent["max_tokens"] == 50
    if provider == "openai":
        assert sent["temperature"] == 0.2
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert sent["system"] == "Be brief."


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_acomplete_is_the_same_call_from_async_code(fake_llm, provider):
    fake_llm.reply("Async hello", input_tokens=3, output_tokens=2)
    reply = run_in_own_loop(provider_for(provider).acomplete(ask(provider)))
    assert (reply.text, reply.usage) == ("Async hello", TokenUsage(3, 2))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_astream_yields_pieces_then_the_final_usage(fake_llm, provider):
    fake_llm.reply("", chunks=["One ", "two ", "three"], input_tokens=4, output_tokens=3)
    events = run_in_own_loop(collect(provider, ask(provider)))
    assert events[:-1] == [TextDelta("One "), TextDelta("two "), TextDelta("three")]
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].usage == TokenUsage(4, 3)
    if provider == "openai":
        assert fake_llm.requests[0].body["stream_options"] == {"include_usage": True}


def test_a_stream_without_a_usage_chunk_ends_with_usage_none(fake_llm):
    fake_llm.reply("no usage here", include_usage=False)
    events = run_in_own_loop(collect("openai", ask("openai")))
    assert events[-1] == StreamEnd(usage=None, finish_reason="stop")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_tokens_arrive_before_the_provider_sends_the_last(fake_llm, provider):
    fake_llm.reply("", chunks=["a ", "b ", "c ", "d"], token_interval=0.3)

    async def sent_when_the_first_arrived() -> int:
        sent = -1
        async for event in provider_for(provider).astream(ask(provider)):
            if sent < 0 and isinstance(event, TextDelta):
                sent = fake_llm.requests[0].chunks_sent
        return sent

    # Passed on as it arrives, not buffered to the end: the server had sent 1 of 4.
    assert run_in_own_loop(sent_when_the_first_arrived()) < 4


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_stream_cut_mid_answer_is_a_provider_error(fake_llm, provider):
    fake_llm.reply("", chunks=["a ", "b ", "c"], disconnect_after=1)

    async def read() -> list[StreamEvent]:
        seen: list[StreamEvent] = []
        with pytest.raises(ProviderError):
            async for event in provider_for(provider).astream(ask(provider)):
                seen.append(event)
        return seen

    assert run_in_own_loop(read()) == [TextDelta("a ")]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_unknown_model_is_a_clear_provider_error(fake_llm, provider):
    with pytest.raises(ProviderError) as caught:
        provider_for(provider).complete(ask(provider, model="no-such-model"))
    assert caught.value.status == 404
    assert "no-such-model" in caught.value.message
    assert "does not know the model" in caught.value.message


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("status", [429, 500])
def test_errors_are_retried_by_the_sdk_then_raised(fake_llm, settings, provider, status):
    settings.LLM_MAX_RETRIES = 2
    fake_llm.fail(status)
    with pytest.raises(ProviderError) as caught:
        provider_for(provider).complete(ask(provider))
    assert caught.value.status == status
    assert len(fake_llm.requests) == 3  # the first try and two retries


def test_a_retried_error_then_success_answers(fake_llm, settings):
    settings.LLM_MAX_RETRIES = 1
    fake_llm.queue(Script(status=500), Script(text="recovered"))
    assert provider_for("openai").complete(ask("openai")).text == "recovered"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_provider_that_hangs_times_out(fake_llm, settings, provider):
    settings.LLM_MAX_RETRIES = 0
    fake_llm.reply("too late", hang=5)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider_for(provider).complete(ask(provider))
    assert caught.value.status is None and "did not answer in time" in caught.value.message
    assert time.monotonic() - started < 4


def test_json_schema_goes_as_each_providers_structured_output_option(fake_llm):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    provider_for("openai").complete(ask("openai", json_schema=schema))
    provider_for("anthropic").complete(ask("anthropic", json_schema=schema))
    openai_body, anthropic_body = (r.body for r in fake_llm.requests)
    assert openai_body["response_format"]["json_schema"]["schema"] == schema
    assert anthropic_body["output_config"]["format"] == {"type": "json_schema", "schema": schema}


@pytest.mark.parametrize(("provider", "variable"), [
    ("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY"),
])  # fmt: skip
def test_a_provider_without_credentials_names_the_variable(settings, provider, variable):
    settings.OPENAI_API_KEY = settings.OPENAI_BASE_URL = ""
    settings.ANTHROPIC_API_KEY = ""
    with pytest.raises(ProviderNotConfigured) as caught:
        provider_for(provider).complete(ask(provider))
    assert caught.value.variable == variable
    assert f"set {variable}" in str(caught.value)


def test_an_openai_compatible_server_needs_no_key(fake_llm, settings):
    settings.OPENAI_API_KEY = ""
    assert provider_for("openai").complete(ask("openai")).text


def test_an_unknown_provider_name_is_refused():
    with pytest.raises(UnknownProvider):
        provider_for("mystery")


def test_a_reply_without_usage_has_usage_none_not_zero_tokens(fake_llm):
    """An OpenAI-compatible server that leaves ``usage`` out: the caller must count, not bill 0."""
    fake_llm.reply("Hello there, friend.", include_usage=False)
    reply = provider_for("openai").complete(ask("openai"))
    assert (reply.text, reply.usage) == ("Hello there, friend.", None)
