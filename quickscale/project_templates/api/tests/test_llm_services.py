"""LLM services through the API and the service page, against the fake provider."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from common.testing.tasks import run_queued_tasks
from credits import ledger
from credits.models import CreditHold, LedgerEntry
from llm.models import LLMServiceConfig
from llm.tests.conftest import (
    EXTRACTION,
    GOOD_EXTRACTION,
    GOOD_REPLY,
    TEXT,
    configure_extraction,
)
from services.models import Job, ServiceUsage

pytestmark = pytest.mark.django_db
RUN = f"/api/services/{EXTRACTION}/run"


@pytest.fixture
def extraction(db, fake_llm) -> LLMServiceConfig:
    """The extraction service on the fake provider (the llm suite's setup)."""
    return configure_extraction()


@pytest.fixture
def funded(user):
    ledger.grant(user, Decimal(100), source="admin", reference="llm-api-grant")
    return user


def post(client, auth, body) -> Any:
    return client.post(RUN, json.dumps(body), content_type="application/json", **auth)


def nothing_charged(user) -> None:
    assert ledger.balance(user).available == Decimal(100)
    assert not LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.CONSUME).exists()
    assert not CreditHold.objects.filter(state=CreditHold.State.OPEN).exists()


def test_a_call_answers_the_json_and_what_it_charged(client, auth, funded, extraction, fake_llm):
    fake_llm.reply(GOOD_REPLY, input_tokens=2000, output_tokens=500)
    response = post(client, auth, {"input": {"text": TEXT}})
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["result"]["data"] == GOOD_EXTRACTION
    assert data["credits_charged"] == "3.00"
    assert ledger.balance(funded).available == Decimal("97.00")


def test_an_unknown_model_is_a_502_and_charges_nothing(client, auth, funded, extraction, fake_llm):
    extraction.model = "gpt-unknown"
    extraction.save()
    response = post(client, auth, {"input": {"text": TEXT}})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "provider_error"
    assert "gpt-unknown" in error["message"] and "No credits were charged" in error["message"]
    assert error["details"]["provider_status"] == 404
    nothing_charged(funded)


def test_a_provider_outage_is_a_502_and_charges_nothing(client, auth, funded, extraction, fake_llm):
    fake_llm.fail(500)
    response = post(client, auth, {"input": {"text": TEXT}})
    assert response.status_code == 502
    nothing_charged(funded)


def test_no_provider_configured_is_a_503_naming_the_variable(
    client, auth, funded, extraction, settings
):
    settings.OPENAI_API_KEY = settings.OPENAI_BASE_URL = ""
    response = post(client, auth, {"input": {"text": TEXT}})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"
    assert "set OPENAI_API_KEY" in response.json()["error"]["message"]
    nothing_charged(funded)
    assert not ServiceUsage.objects.exists()


@pytest.mark.parametrize("max_tokens", [0, -1, 5000])
def test_bad_max_tokens_is_a_422_before_any_hold(
    client, auth, funded, extraction, fake_llm, max_tokens
):
    response = post(client, auth, {"input": {"text": TEXT, "max_tokens": max_tokens}})
    assert response.status_code == 422
    assert "max_tokens" in response.json()["error"]["details"]["fields"]
    assert not CreditHold.objects.exists() and fake_llm.requests == []


def test_a_prompt_beyond_the_context_is_a_422_before_any_hold(
    client, auth, funded, extraction, fake_llm
):
    LLMServiceConfig.objects.filter(pk=extraction.pk).update(
        context_window=1500, max_tokens=1000, max_tokens_cap=1000
    )
    response = post(client, auth, {"input": {"text": "word " * 200}})
    assert response.status_code == 422
    assert "context" in response.json()["error"]["message"] + str(response.json()["error"])
    assert not CreditHold.objects.exists() and fake_llm.requests == []


def test_a_balance_below_the_hold_is_a_402_and_the_provider_is_not_called(
    client, auth, user, extraction, fake_llm
):
    ledger.grant(user, Decimal("0.10"), source="admin", reference="small-grant")
    response = post(client, auth, {"input": {"text": TEXT}})
    assert response.status_code == 402
    assert fake_llm.requests == []


def test_a_long_call_runs_as_a_job_held_then_charged_its_usage(
    client, auth, funded, extraction, fake_llm, django_capture_on_commit_callbacks
):
    fake_llm.reply(GOOD_REPLY, input_tokens=1000, output_tokens=1000)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, auth, {"input": {"text": TEXT}, "async": True})
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["data"]["id"])
    assert job.credits_held > Decimal("3.00")  # the most the call can cost
    assert ledger.balance(funded).available == Decimal(100) - job.credits_held
    run_queued_tasks()
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result is not None and job.result["data"] == GOOD_EXTRACTION
    assert job.credits_charged == Decimal("3.00")
    assert ledger.balance(funded).available == Decimal("97.00")


def test_a_job_whose_provider_fails_charges_nothing(
    client, auth, funded, extraction, fake_llm, django_capture_on_commit_callbacks
):
    fake_llm.fail(429)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, auth, {"input": {"text": TEXT}, "async": True})
    run_queued_tasks()
    job = Job.objects.get(pk=response.json()["data"]["id"])
    assert job.state == Job.State.FAILED
    nothing_charged(funded)


def test_the_service_page_shows_not_configured_with_the_variable(
    client, funded, extraction, settings
):
    settings.ANTHROPIC_API_KEY = ""
    LLMServiceConfig.objects.filter(pk=extraction.pk).update(provider="anthropic")
    client.force_login(funded)
    page = client.get(f"/services/{EXTRACTION}/")
    assert page.status_code == 200
    assert b"Not configured" in page.content and b"ANTHROPIC_API_KEY" in page.content
    refused = client.post(f"/services/{EXTRACTION}/", {"text": TEXT})
    assert refused.status_code == 503
    nothing_charged(funded)


def test_the_service_page_runs_the_call_and_shows_its_price(client, funded, extraction, fake_llm):
    fake_llm.reply(GOOD_REPLY, input_tokens=1000, output_tokens=0)
    client.force_login(funded)
    page = client.get(f"/services/{EXTRACTION}/")
    assert b"1 credits per 1,000 input tokens, 2 per 1,000 output tokens" in page.content
    response = client.post(f"/services/{EXTRACTION}/", {"text": TEXT})
    assert response.status_code == 200
    html = response.content.decode()
    # The structured output as a definition list (its raw JSON one click away), not a repr.
    assert "<dt>People</dt>" in html.replace("\n", "").replace("  ", "")
    assert "Ada Lovelace" in html
    assert "{'people'" not in html
    assert ledger.balance(funded).available == Decimal("99.00")


def test_the_services_list_shows_an_llm_service_priced_per_token(client, funded, extraction):
    client.force_login(funded)
    page = client.get("/services/")
    assert b"1 credits per 1,000 input tokens, 2 per 1,000 output tokens" in page.content
