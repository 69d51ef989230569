"""A service call reads its Service row once, however many places need it."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from services.models import Service, ServiceUsage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_services")]


def service_row_reads(queries: CaptureQueriesContext) -> int:
    return sum('FROM "services_service"' in query["sql"] for query in queries.captured_queries)


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/services/demo_free_service/run", {"input": {"text": "three little words"}}),
        ("/api/text/", {"operation": "count", "text": "three little words"}),
    ],
)
def test_a_run_reads_the_service_row_once(client, auth, url, body):
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, json.dumps(body), content_type="application/json", **auth)

    assert response.status_code == 200, response.content
    assert response.json()["data"]["result"]["words"] == 3
    assert service_row_reads(queries) == 1


def test_a_switched_off_service_is_a_404_before_the_body_is_read(client, auth):
    Service.objects.filter(name="demo_free_service").update(is_active=False)
    response = client.post(
        "/api/services/demo_free_service/run", "not json", content_type="application/json", **auth
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not ServiceUsage.objects.exists()


def test_the_schema_documents_bearer_authentication(client):
    schema = client.get("/api/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert list(schemes.values()) == [{"type": "http", "scheme": "bearer"}]
    (name,) = schemes
    run = schema["paths"]["/api/services/{name}/run"]["post"]
    assert run["security"] == [{name: []}]
