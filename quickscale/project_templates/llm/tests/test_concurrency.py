"""Concurrent LLM calls of one user: the holds never let two calls spend the same credits."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from common.testing.fake_llm import Script
from credits import ledger
from credits.exceptions import InsufficientCredits
from credits.models import CreditHold
from llm.tests.conftest import EXTRACTION, GOOD_REPLY, TEXT, configure_extraction
from services.base import ServiceResult
from services.registry import create_service_instance
from users.tests.factories import make_user


@pytest.mark.django_db(transaction=True)
def test_a_call_while_another_holds_the_credits_is_refused_and_one_is_charged(fake_llm):
    """The first call waits at the provider (its hold committed, in its own thread and
    connection, as a concurrent request's); a second call then finds too little left."""
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
    gate = threading.Event()
    fake_llm.queue(Script(text=GOOD_REPLY, input_tokens=1000, output_tokens=1000, gate=gate))
    outcomes: list[ServiceResult | Exception] = []

    def first_call() -> None:
        try:
            outcomes.append(create_service_instance(EXTRACTION).run(user, text=TEXT))
        except Exception as error:
            outcomes.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=first_call)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not fake_llm.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake_llm.requests, "the first call never reached the provider"
        with pytest.raises(InsufficientCredits):
            create_service_instance(EXTRACTION).run(user, text=TEXT)
    finally:
        gate.set()
        thread.join(30)
    assert [type(outcome) for outcome in outcomes] == [ServiceResult]
    assert len(fake_llm.requests) == 1
    # 1,000 input tokens at 1 credit per 1,000 and 1,000 output tokens at 2.
    assert ledger.balance(user).available == grant - Decimal("3.00")
    assert not CreditHold.objects.filter(state=CreditHold.State.OPEN).exists()
