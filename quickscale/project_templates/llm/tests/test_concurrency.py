"""Concurrent LLM calls of one user: the holds never let two calls spend the same credits."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from credits import ledger
from credits.exceptions import InsufficientCredits
from credits.models import CreditHold
from llm.tests.conftest import EXTRACTION, GOOD_REPLY, TEXT, configure_extraction
from services.base import ServiceResult
from services.registry import create_service_instance
from users.tests.factories import make_user


@pytest.mark.django_db(transaction=True)
def test_two_calls_with_credits_for_one_hold_call_the_provider_once(fake_llm):
    """Each thread has its own connection and its hold commits, as concurrent requests'."""
    configure_extraction()
    service = create_service_instance(EXTRACTION)
    cleaned = service.validate_input(text=TEXT)  # the input both calls send
    most = Decimal(service.billable_units(cleaned)) * Decimal("0.01")  # the hold, in credits
    user = make_user()
    # Room for one hold, not two at once; one after the other, both would run (the
    # first is charged 3.00 and frees the rest of its hold).
    grant = most + Decimal("3.01")
    assert grant < 2 * most
    ledger.grant(user, grant, source="admin", reference="one-hold")
    fake_llm.default.text = GOOD_REPLY
    fake_llm.default.first_token_delay = 0.5  # both calls are in flight together
    fake_llm.default.input_tokens = fake_llm.default.output_tokens = 1000
    outcomes: list[ServiceResult | Exception] = []

    def call() -> None:
        try:
            outcomes.append(create_service_instance(EXTRACTION).run(user, text=TEXT))
        except InsufficientCredits as error:
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(type(o).__name__ for o in outcomes) == ["InsufficientCredits", "ServiceResult"]
    assert len(fake_llm.requests) == 1
    # 1,000 input tokens at 1 credit per 1,000 and 1,000 output tokens at 2.
    assert ledger.balance(user).available == grant - Decimal("3.00")
    assert not CreditHold.objects.filter(state=CreditHold.State.OPEN).exists()
