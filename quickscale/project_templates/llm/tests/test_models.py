"""LLMServiceConfig refuses a bad configuration when saved, on every path (code and admin)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from llm.models import LLMServiceConfig
from llm.tests.conftest import EXTRACTION, configure_extraction
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "objekt"},  # not a JSON Schema type
        {"type": "object", "properties": {"name": {"type": 5}}},
        {"type": "object", "required": "name"},  # required must be a list
        ["not", "an", "object"],
    ],
)
def test_a_schema_that_is_not_valid_json_schema_is_refused_when_saved(schema):
    config = configure_extraction()
    before = config.json_schema
    config.json_schema = schema
    with pytest.raises(ValidationError) as caught:
        config.save()
    assert "json_schema" in caught.value.message_dict
    assert LLMServiceConfig.objects.get(pk=config.pk).json_schema == before


def test_a_valid_schema_and_no_schema_are_accepted():
    config = configure_extraction()
    config.json_schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    config.save()
    config.json_schema = None
    config.save()
    assert LLMServiceConfig.objects.get(pk=config.pk).json_schema is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"prompt_template": "Summarise ${text"}, "prompt_template"),
        ({"max_tokens": 5000, "max_tokens_cap": 4096}, "max_tokens"),
        ({"max_tokens_cap": 8000, "context_window": 8000}, "max_tokens_cap"),
        ({"provider": "mystery"}, "provider"),
        ({"temperature": Decimal("2.5")}, "temperature"),
        ({"input_price_per_1k": Decimal("-1")}, "input_price_per_1k"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_other_bad_settings_are_refused_when_saved(changes, field):
    config = configure_extraction()
    for name, value in changes.items():
        setattr(config, name, value)
    with pytest.raises(ValidationError) as caught:
        config.save()
    assert field in caught.value.message_dict


def test_the_admin_refuses_an_invalid_schema_and_changes_nothing(client):
    config = configure_extraction()
    admin = make_user(is_staff=True, is_superuser=True)
    client.force_login(admin)
    url = f"/admin/llm/llmserviceconfig/{config.pk}/change/"
    form = {
        "provider": "openai",
        "model": "fake-gpt",
        "temperature": "0.5",
        "max_tokens": "100",
        "max_tokens_cap": "200",
        "context_window": "1000",
        "max_input_chars": "500",
        "input_price_per_1k": "1",
        "output_price_per_1k": "2",
        "system_prompt": "",
        "prompt_template": "$text",
        "json_schema": '{"type": "objekt"}',
    }
    response = client.post(url, form)
    assert response.status_code == 200  # the form again, with the error
    assert b"not valid JSON Schema" in response.content
    unchanged = LLMServiceConfig.objects.get(pk=config.pk)
    assert unchanged.max_tokens_cap != 200 and unchanged.json_schema != {"type": "objekt"}
    form["json_schema"] = '{"type": "object"}'
    assert client.post(url, form).status_code == 302
    assert LLMServiceConfig.objects.get(pk=config.pk).max_tokens_cap == 200


def test_the_first_use_creates_the_configuration_from_the_class_defaults(db):
    config = configure_extraction()
    assert config.service.name == EXTRACTION
    assert config.provider == "openai"
    assert config.json_schema is not None and config.json_schema["type"] == "object"
