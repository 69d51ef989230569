"""A structured-output call may send its prompt twice (one schema retry): its hold, its
run time limit and a job's hold and deadline last long enough for both attempts."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from common.testing.fake_llm import Script
from credits import ledger
from credits.models import CreditHold
from llm.tests.conftest import EXTRACTION, GOOD_REPLY, TEXT, configure_extraction
from services.base import ServiceResult
from services.jobs import enqueue_job
from services.models import ServiceUsage
from services.registry import create_service_instance
from users.tests.factories import make_user

# One attempt may last LLM_REQUEST_TIMEOUT_SECONDS x (LLM_MAX_RETRIES + 1) = 90 s.
TIMEOUT, RETRIES = 30, 2
ONE_ATTEMPT = TIMEOUT * (RETRIES + 1)
MARGIN = 60  # the minute metering.hold_seconds adds past the longest call


@pytest.fixture
def slow_provider(settings, fake_llm):
    """Provider timeouts that outweigh SERVICE_CALL_TIMEOUT_SECONDS, so they decide."""
    settings.LLM_REQUEST_TIMEOUT_SECONDS = TIMEOUT
    settings.LLM_MAX_RETRIES = RETRIES
    settings.SERVICE_CALL_TIMEOUT_SECONDS = 1
    return fake_llm


@pytest.mark.django_db(transaction=True)
def test_a_hold_outlasts_the_second_attempt_of_a_schema_call(slow_provider):
    """The sweep runs once one attempt's time (and its minute) is over, while the retry is
    still at the provider: the hold is not freed, the answer is charged."""
    configure_extraction()
    user = make_user()
    ledger.grant(user, Decimal(100), source="admin", reference="attempts-grant")
    gate = threading.Event()
    slow_provider.queue(
        Script(text="Sure! Here are the entities."),  # fails the schema: asked again
        Script(text=GOOD_REPLY, input_tokens=1000, output_tokens=1000, gate=gate),
    )
    outcomes: list[ServiceResult | Exception] = []

    def call() -> None:
        try:
            outcomes.append(create_service_instance(EXTRACTION).run(user, text=TEXT))
        except Exception as error:
            outcomes.append(error)
        finally:
            connection.close()

    opened = timezone.now()
    thread = threading.Thread(target=call)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(slow_provider.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(slow_provider.requests) == 2, "the retry never reached the provider"
        one_attempt_over = opened + timedelta(seconds=ONE_ATTEMPT + MARGIN + 30)
        assert ledger.release_expired_holds(now=one_attempt_over) == 0
    finally:
        gate.set()
        thread.join(30)
    assert [type(outcome) for outcome in outcomes] == [ServiceResult]
    hold = CreditHold.objects.get(user=user)
    assert hold.state == CreditHold.State.SETTLED
    assert hold.expires_at >= opened + timedelta(seconds=2 * ONE_ATTEMPT + MARGIN)
    usage = ServiceUsage.objects.get(user=user)
    assert usage.status == ServiceUsage.Status.SUCCEEDED and usage.credits_charged > 0
    assert ledger.balance(user).available == Decimal(100) - usage.credits_charged


@pytest.mark.django_db
def test_a_schema_service_may_run_as_long_as_both_attempts(slow_provider):
    configure_extraction()
    assert create_service_instance(EXTRACTION).run_time_limit() >= 2 * ONE_ATTEMPT


@pytest.mark.django_db
def test_a_free_text_service_needs_one_attempts_time(slow_provider):
    config = configure_extraction()
    config.json_schema = None
    config.save()
    limit = create_service_instance(EXTRACTION).run_time_limit()
    assert ONE_ATTEMPT <= limit < 2 * ONE_ATTEMPT


@pytest.mark.django_db
def test_a_schema_jobs_hold_and_deadline_cover_both_attempts(slow_provider, settings):
    settings.JOB_MAX_QUEUE_WAIT_SECONDS = 1
    configure_extraction()
    user = make_user()
    ledger.grant(user, Decimal(100), source="admin", reference="attempts-job-grant")
    job = enqueue_job(
        create_service_instance(EXTRACTION), user, origin="api", inputs={"text": TEXT}
    )
    hold = CreditHold.objects.get(key=job.hold_key)
    assert hold.expires_at == job.expires_at
    assert job.expires_at >= job.enqueued_at + timedelta(seconds=1 + 2 * ONE_ATTEMPT)
