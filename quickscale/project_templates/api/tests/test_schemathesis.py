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
    assert len(operations) == 9
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


def test_the_job_endpoints_match_their_schema_with_real_jobs(
    api_schema, funded_key, user, other_user, fund, django_capture_on_commit_callbacks
):
    """Generated job ids name no job, so the test above sees only 404s from the job
    endpoints; these cases name real ones, in every state, and check each answer
    (202 with its Location, 200, 202 and 409 from DELETE, a file download) against
    the schema."""
    from common.testing.tasks import run_queued_tasks
    from services.jobs import enqueue_job
    from services.models import Job
    from services.registry import create_service_instance

    headers = {"Authorization": f"Bearer {funded_key}"}

    def check(method: str, path: str, expected: int, **case_data) -> None:
        case = api_schema[path][method].Case(**case_data)
        with django_capture_on_commit_callbacks(execute=True):
            response = case.call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code == expected, response.text

    run = "/api/services/{name}/run"
    batch = {"name": "batch_sentiment_analysis"}
    body = {"input": {"texts": ["Good.", "Bad."]}}
    check("POST", run, 202, path_parameters=batch, body=body, media_type="application/json")
    check(
        "POST",
        run,
        202,
        path_parameters={"name": "demo_free_service"},
        body={"input": {"text": "two words"}, "async": True},
        media_type="application/json",
    )
    run_queued_tasks()
    done = Job.objects.filter(service__name="batch_sentiment_analysis").get()
    queued = enqueue_job(
        create_service_instance("text_summarizer"), user, origin="api", inputs={"text": "A. B."}
    )
    fund(other_user, 1)
    theirs = enqueue_job(
        create_service_instance("batch_sentiment_analysis"),
        other_user,
        origin="web",
        inputs={"texts": "not yours"},
    )

    job = "/api/jobs/{job_id}"
    check("GET", "/api/jobs/", 200, query={"page": 1, "page_size": 2})
    check("GET", job, 200, path_parameters={"job_id": str(done.pk)})
    check("GET", job, 200, path_parameters={"job_id": str(queued.pk)})
    check("GET", job, 404, path_parameters={"job_id": str(theirs.pk)})
    check("GET", job + "/file", 200, path_parameters={"job_id": str(done.pk)})
    check("GET", job + "/file", 404, path_parameters={"job_id": str(queued.pk)})
    check("DELETE", job, 200, path_parameters={"job_id": str(queued.pk)})
    check("DELETE", job, 409, path_parameters={"job_id": str(queued.pk)})
    check("DELETE", job, 404, path_parameters={"job_id": str(theirs.pk)})
    Job.objects.filter(pk=theirs.pk).update(owner=user, state=Job.State.RUNNING)
    check("DELETE", job, 202, path_parameters={"job_id": str(theirs.pk)})
