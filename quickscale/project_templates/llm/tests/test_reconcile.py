"""The usage reconciler leaves an LLM call alone while it is within its own, longer time limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from llm.service import LLMService
from llm.tests.conftest import EXTRACTION, configure_extraction
from services.configuration import ensure_service_rows
from services.models import Service, ServiceUsage
from services.registry import create_service_instance
from services.usage import usage_reconcile_stale
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

PLAIN = "text_sentiment_analysis"


def _pending(name: str, age: timedelta) -> ServiceUsage:
    usage = ServiceUsage.objects.create(
        user=make_user(), service=Service.objects.get(name=name), status="pending"
    )
    ServiceUsage.objects.filter(pk=usage.pk).update(created_at=timezone.now() - age)
    return usage


def test_a_slow_llm_call_past_the_default_timeout_is_not_failed_until_its_own_limit(settings):
    settings.SERVICE_CALL_TIMEOUT_SECONDS = 300
    configure_extraction()
    ensure_service_rows((PLAIN,))
    service = create_service_instance(EXTRACTION)
    assert isinstance(service, LLMService)
    limit = service.run_time_limit()
    assert limit > 300  # retries and the schema's second attempt: longer than the default

    llm_call = _pending(EXTRACTION, timedelta(seconds=310))
    plain_call = _pending(PLAIN, timedelta(seconds=310))

    assert usage_reconcile_stale() == 1  # only the plain service's call
    llm_call.refresh_from_db()
    plain_call.refresh_from_db()
    assert (llm_call.status, plain_call.status) == ("pending", "failed")

    later = timezone.now() + timedelta(seconds=limit)
    assert usage_reconcile_stale(now=later) == 1
    llm_call.refresh_from_db()
    assert llm_call.status == "failed"
