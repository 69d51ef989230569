"""The API answers 503 in its JSON envelope, with Retry-After, while the database is down."""

import pytest
from django.test import Client

from common.outage import RETRY_AFTER_SECONDS
from common.testing.outage import database_outage


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/credits/balance/", None),
        ("post", "/api/text/", {"operation": "count", "text": "one two"}),
    ],
    ids=["balance", "text"],
)
def test_calls_answer_503_in_the_envelope_while_the_database_is_down(
    auth, default_services, method, path, body
):
    """transaction=True: the database is really cut off, which no test transaction survives."""
    client = Client(raise_request_exception=False)
    with database_outage():
        response = getattr(client, method)(path, body, content_type="application/json", **auth)

    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json() == {
        "success": False,
        "data": None,
        "error": {
            "code": "service_unavailable",
            "message": f"The service is briefly unavailable. Retry in {RETRY_AFTER_SECONDS} s.",
            "details": {"retry_after": RETRY_AFTER_SECONDS},
        },
    }
    # Back up, the same call works.
    again = getattr(client, method)(path, body, content_type="application/json", **auth)
    assert again.status_code == 200


@pytest.mark.django_db
def test_the_schema_documents_503_and_its_retry_after_header(client):
    schema = client.get("/api/openapi.json").json()
    for path, operation_id in (
        ("/api/services/{name}/run", "run_service"),
        ("/api/credits/balance/", "balance"),
    ):
        operation = next(iter(schema["paths"][path].values()))
        assert operation["operationId"] == operation_id
        unavailable = operation["responses"]["503"]
        assert unavailable["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorEnvelope"
        }
        assert unavailable["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
