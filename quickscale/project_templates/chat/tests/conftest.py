"""Fixtures of the chat's tests: the chat service pointed at the fake provider, a funded member."""

from __future__ import annotations

import pytest

from chat.tests.factories import configure_chat, funded_user
from llm.models import LLMServiceConfig


@pytest.fixture
def chat(db, fake_llm) -> LLMServiceConfig:
    """The chat's configuration on the fake provider (``configure_chat``)."""
    return configure_chat()


@pytest.fixture
def member(db):
    """An account with 100 credits."""
    return funded_user()
