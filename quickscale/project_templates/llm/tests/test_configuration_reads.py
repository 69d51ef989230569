"""An LLM service reads its Service row and its LLM configuration in one query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from llm.models import LLMServiceConfig
from llm.service import LLMService
from llm.tests.conftest import EXTRACTION
from services.configuration import ensure_service_rows
from services.exceptions import ServiceUnavailable
from services.models import Service
from services.registry import create_service_instance

pytestmark = pytest.mark.django_db


def extraction_service() -> LLMService:
    service = create_service_instance(EXTRACTION)
    assert isinstance(service, LLMService)
    return service


def test_the_row_and_the_configuration_are_read_in_one_query(extraction):
    service = extraction_service()
    with CaptureQueriesContext(connection) as queries:
        row = service.configuration()
        config = service.llm_config()
    assert len(queries.captured_queries) == 1
    assert row.name == EXTRACTION and row.is_active
    assert config.pk == extraction.pk and config.model == extraction.model
    assert config.service == row


def test_a_switched_off_service_is_unavailable(extraction):
    Service.objects.filter(name=EXTRACTION).update(is_active=False)
    with pytest.raises(ServiceUnavailable):
        extraction_service().configuration()


def test_a_service_without_its_configuration_yet_creates_it_from_its_defaults(db):
    ensure_service_rows((EXTRACTION,))
    LLMServiceConfig.objects.filter(service__name=EXTRACTION).delete()
    service = extraction_service()
    row = service.configuration()
    config = service.llm_config()
    assert row.name == EXTRACTION
    assert config.pk is not None and config.service == row
    assert config.max_tokens == service.llm_defaults.max_tokens
