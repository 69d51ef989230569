"""`manage.py configure_llm_service`: shows, changes, and refuses bad changes writing nothing."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from llm.models import LLMServiceConfig
from llm.tests.conftest import EXTRACTION, configure_extraction

pytestmark = pytest.mark.django_db


def configure(*args: str) -> str:
    out = io.StringIO()
    call_command("configure_llm_service", EXTRACTION, *args, stdout=out)
    return out.getvalue()


def test_it_changes_provider_model_and_prices():
    configure_extraction()
    output = configure(
        "--provider", "anthropic", "--model", "claude-x", "--input-price", "0.125",
        "--output-price", "0.5", "--max-tokens-cap", "2000",
    )  # fmt: skip
    config = LLMServiceConfig.objects.get(service__name=EXTRACTION)
    assert (config.provider, config.model) == ("anthropic", "claude-x")
    assert config.input_price_per_1k == Decimal("0.125")
    assert config.output_price_per_1k == Decimal("0.5")
    assert config.max_tokens_cap == 2000
    assert output.startswith("Updated structured_extraction: anthropic claude-x")


def test_an_invalid_schema_file_is_refused_and_nothing_changes(tmp_path):
    configure_extraction()
    before = LLMServiceConfig.objects.get(service__name=EXTRACTION)
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "objekt"}')
    with pytest.raises(CommandError, match="not valid JSON Schema"):
        configure("--json-schema-file", str(schema), "--model", "other")
    after = LLMServiceConfig.objects.get(service__name=EXTRACTION)
    assert (after.json_schema, after.model) == (before.json_schema, before.model)


def test_no_json_schema_makes_replies_free_text():
    configure_extraction()
    configure("--no-json-schema")
    assert LLMServiceConfig.objects.get(service__name=EXTRACTION).json_schema is None


def test_a_service_that_is_not_an_llm_service_is_refused():
    with pytest.raises(CommandError, match="not an LLM service"):
        call_command("configure_llm_service", "text_summarizer", stdout=io.StringIO())


def test_without_a_key_it_says_what_to_set(settings):
    configure_extraction()
    settings.OPENAI_API_KEY = settings.OPENAI_BASE_URL = ""
    assert "set OPENAI_API_KEY" in configure()
