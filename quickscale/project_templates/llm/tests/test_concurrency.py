"""Concurrent LLM calls of one user: the holds never let two calls spend the same credits."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from common.testing.fake_llm import Script, call_held_at_provider
from common.testing.tasks import run_queued_tasks
from credits import ledger
from credits.exceptions import InsufficientCredits
from credits.models import CreditHold
from llm.tests.conftest import EXTRACTION, GOOD_REPLY, TEXT, configure_extraction
from services.base import ServiceResult
from services.exceptions import ServiceFailed
from services.jobs import enqueue_job, sweep_lapsed_leases
from services.models import Job, ServiceUsage
from services.registry import create_service_instance
from services.usage import usage_reconcile_stale
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
    with _in_flight(fake_llm, user) as outcomes, pytest.raises(InsufficientCredits):
        create_service_instance(EXTRACTION).run(user, text=TEXT)
    assert [type(outcome) for outcome in outcomes] == [ServiceResult]
    assert len(fake_llm.requests) == 1
    # 1,000 input tokens at 1 credit per 1,000 and 1,000 output tokens at 2.
    assert ledger.balance(user).available == grant - Decimal("3.00")
    assert not CreditHold.objects.filter(state=CreditHold.State.OPEN).exists()


def _in_flight(fake_llm, user) -> AbstractContextManager[list[ServiceResult | Exception]]:
    """A call in its own thread, waiting at the provider while the block runs."""
    script = Script(text=GOOD_REPLY, input_tokens=1000, output_tokens=1000)
    return call_held_at_provider(
        fake_llm, script, lambda: create_service_instance(EXTRACTION).run(user, text=TEXT)
    )


@pytest.mark.django_db(transaction=True)
def test_a_hold_swept_during_the_call_fails_it_uncharged(fake_llm):
    configure_extraction()
    user = make_user()
    ledger.grant(user, Decimal(100), source="admin", reference="sweep-grant")
    with _in_flight(fake_llm, user) as outcomes:
        later = timezone.now() + timedelta(days=1)
        assert ledger.release_expired_holds(now=later) == 1
    assert isinstance(outcomes[0], ServiceFailed)
    assert ledger.balance(user).available == Decimal(100)
    usage = ServiceUsage.objects.get(user=user)
    assert usage.status == ServiceUsage.Status.FAILED and usage.credits_charged == 0


@pytest.mark.django_db(transaction=True)
def test_a_call_reconciled_as_failed_meanwhile_is_not_charged(fake_llm):
    configure_extraction()
    user = make_user()
    ledger.grant(user, Decimal(100), source="admin", reference="reconcile-grant")
    with _in_flight(fake_llm, user) as outcomes:
        later = timezone.now() + timedelta(days=1)
        assert usage_reconcile_stale(now=later) == 1
    assert isinstance(outcomes[0], ServiceFailed)
    assert ledger.balance(user).available == Decimal(100)
    assert not CreditHold.objects.filter(state=CreditHold.State.OPEN).exists()
    assert ServiceUsage.objects.get(user=user).status == ServiceUsage.Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_a_slow_model_keeps_its_job_alive_and_is_asked_once(fake_llm, settings):
    """The lease sweep runs beside the job all along; the heartbeat keeps the job its run's."""
    settings.JOB_LEASE_SECONDS = 1
    settings.LLM_REQUEST_TIMEOUT_SECONDS = 10  # the model is slow, not dead
    configure_extraction()
    user = make_user()
    ledger.grant(user, Decimal(100), source="admin", reference="slow-job-grant")
    fake_llm.reply(GOOD_REPLY, first_token_delay=2.5, input_tokens=1000, output_tokens=1000)
    job = enqueue_job(
        create_service_instance(EXTRACTION), user, origin="api", inputs={"text": TEXT}
    )
    swept: list[int] = []
    stop = threading.Event()

    def sweeper() -> None:
        try:
            while not stop.wait(0.3):
                swept.append(sweep_lapsed_leases())
        finally:
            connection.close()

    thread = threading.Thread(target=sweeper)
    thread.start()
    try:
        run_queued_tasks()
    finally:
        stop.set()
        thread.join(10)
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.attempts == 1 and len(fake_llm.requests) == 1
    assert job.progress_message == "Waiting for the model"
    assert len(swept) >= 5 and sum(swept) == 0
    assert job.credits_charged == Decimal("3.00")
    assert ledger.balance(user).available == Decimal("97.00")
