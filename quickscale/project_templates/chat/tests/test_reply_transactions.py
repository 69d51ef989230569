"""A chat reply's money path: two transactions without savepoints, and late closes uncharged.

The reply is opened (message, reply, hold, pending usage) in one transaction and
settled (charge, usage ended, reply recorded) in another. A hold the sweep freed
or a usage the reconciler failed while the model wrote makes the settle's
transaction roll back whole; the call is then failed in one of its own, charged
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import timedelta
from decimal import Decimal
from typing import TypeVar

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.models import Message
from chat.tests.factories import configure_chat, funded_user
from common.testing.fake_llm import Script, call_held_at_provider
from credits import ledger
from credits.models import CreditHold, LedgerEntry
from services.base import ServiceResult
from services.models import ServiceUsage
from services.registry import create_service_instance
from services.usage import STALE_ERROR, usage_reconcile_stale

pytestmark = pytest.mark.django_db(transaction=True)

REPLY = "Hello there, friend."
T = TypeVar("T")


def test_a_reply_is_opened_and_settled_without_savepoints(fake_llm):
    configure_chat()
    user = funded_user()
    fake_llm.queue(Script(text=REPLY, input_tokens=20, output_tokens=10))
    result, statements = _in_own_thread(
        lambda: _with_statements(lambda: create_service_instance("chat").run(user, message="Hi"))
    )
    assert not [sql for sql in statements if "SAVEPOINT" in sql.upper()]
    # 20 tokens read at 1 credit per 1,000 and 10 written at 2.
    assert result.result["credits_charged"] == "0.04"
    assert ledger.balance(user).available == Decimal("99.96")
    assert ServiceUsage.objects.get(user=user).status == ServiceUsage.Status.SUCCEEDED


Outcomes = list[ServiceResult | Exception]


def _with_statements(call: Callable[[], T]) -> tuple[T, list[str]]:
    """``call()`` and the SQL it sent on this thread's connection."""
    try:
        with CaptureQueriesContext(connection) as queries:
            result = call()
        return result, [query["sql"] for query in queries.captured_queries]
    finally:
        connection.close()


def _in_own_thread(call: Callable[[], T]) -> T:
    # The chat service bridges into asyncio (async_to_sync), which refuses a thread
    # where an event loop runs, as Playwright leaves one in the main thread after a
    # browser test earlier in the session.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def _reply_in_flight(fake_llm, user) -> AbstractContextManager[Outcomes]:
    """A chat call in its own thread, waiting at the provider while the block runs."""
    script = Script(text=REPLY, input_tokens=1000, output_tokens=1000)
    return call_held_at_provider(
        fake_llm, script, lambda: create_service_instance("chat").run(user, message="Hi")
    )


def _assert_recorded_uncharged(user, outcomes: Outcomes) -> ServiceUsage:
    (outcome,) = outcomes
    assert isinstance(outcome, ServiceResult), outcome
    assert outcome.result["reply"] == REPLY
    assert outcome.result["credits_charged"] == "0.00"
    assert ledger.balance(user).available == Decimal(100)
    assert not CreditHold.objects.filter(state=CreditHold.State.OPEN).exists()
    assert not LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.CONSUME).exists()
    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.content == REPLY and reply.credits_charged == 0
    usage = ServiceUsage.objects.get(user=user)
    assert usage.status == ServiceUsage.Status.FAILED and usage.credits_charged == 0
    return usage


def test_a_reply_whose_hold_was_swept_meanwhile_is_recorded_uncharged(fake_llm):
    configure_chat()
    user = funded_user()
    with _reply_in_flight(fake_llm, user) as outcomes:
        assert ledger.release_expired_holds(now=timezone.now() + timedelta(days=1)) == 1
    usage = _assert_recorded_uncharged(user, outcomes)
    assert usage.error.startswith("HoldReleased")


def test_a_reply_reconciled_as_failed_meanwhile_has_its_charge_rolled_back(fake_llm):
    configure_chat()
    user = funded_user()
    with _reply_in_flight(fake_llm, user) as outcomes:
        assert usage_reconcile_stale(now=timezone.now() + timedelta(days=1)) == 1
    # The settle charged the hold before it found the usage no longer pending: that
    # charge rolled back with its transaction, and the hold was released.
    usage = _assert_recorded_uncharged(user, outcomes)
    assert usage.error == STALE_ERROR
    assert CreditHold.objects.get().state == CreditHold.State.RELEASED
