"""Property-based check of the API against its own OpenAPI schema (schemathesis 4).

Generated requests (valid and invalid) must never get a 5xx, and every answer
must match the schema: a declared status, content type, headers and body. A
request the schema calls valid must not be refused as invalid (a 400 or 422):
the schema must be as strict as the code.
Examples are capped so the run stays short on CI's two cores; the per-key rate
limit is switched off for the run (hundreds of requests come from one key).
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
]


@pytest.fixture
def api_schema(db):
    """The schema, served by the real WSGI app in this thread (so it sees the test data).

    Django's WSGI handler closes the database connection around each request; its test
    client unhooks that signal, and so must we, or the test transaction would be lost.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def funded_key(user, key, fund, default_services, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    fund(user, 1000)
    return key


def test_the_api_never_errors_and_always_matches_its_schema(api_schema, funded_key):
    """Each operation in turn, valid and invalid requests, driven by hypothesis directly.

    (schemathesis' own pytest plugin cannot collect lazy schemas under pytest 9.)
    """
    headers = {"Authorization": f"Bearer {funded_key}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 5
    for operation in operations:

        @given(
            case=operation.as_strategy(GenerationMode.POSITIVE)
            | operation.as_strategy(GenerationMode.NEGATIVE)
        )
        @hypothesis_settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
