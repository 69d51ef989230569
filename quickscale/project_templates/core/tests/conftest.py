"""Fixtures shared by core's tests: the ASGI application ``core.asgi`` serves, and the chat's
fixtures (its configuration on the fake provider, a funded member) for the tests that call it."""

from __future__ import annotations

import pytest

from chat.tests.conftest import chat, member  # noqa: F401  (fixtures)
from core.body_limit import BodyLimitMiddleware
from core.handlers import SyncChainASGIHandler


@pytest.fixture
def application() -> BodyLimitMiddleware:
    """The application core.asgi serves, built with the settings of the test."""
    return BodyLimitMiddleware(SyncChainASGIHandler())
