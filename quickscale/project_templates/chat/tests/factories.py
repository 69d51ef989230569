"""Builders for the chat's tests (and the stream tests in core/tests, which use them too)."""

from __future__ import annotations

from decimal import Decimal

from common.testing.fake_llm import OPENAI_MODEL
from credits import ledger
from llm.models import LLMServiceConfig
from llm.service import LLMService
from services.configuration import ensure_service_rows
from services.registry import create_service_instance
from users.models import CustomUser
from users.tests.factories import make_user


def configure_chat() -> LLMServiceConfig:
    """The chat on the fake's OpenAI model: 1 credit per 1k tokens read, 2 per 1k written."""
    ensure_service_rows(("chat",))
    service = create_service_instance("chat")
    assert isinstance(service, LLMService)
    config = service.llm_config()
    config.model = OPENAI_MODEL
    config.input_price_per_1k = Decimal("1")
    config.output_price_per_1k = Decimal("2")
    config.max_tokens = 100
    config.save()
    return config


def funded_user(credits: Decimal = Decimal(100)) -> CustomUser:
    user = make_user()
    ledger.grant(user, credits, source="admin", reference=f"chat-grant-{user.pk}")
    return user
