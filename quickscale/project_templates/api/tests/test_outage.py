"""The API answers 503 in its JSON envelope, with Retry-After, while the database is down."""

import json
import os

import pytest
from django.test import Client

from common.outage import RETRY_AFTER_SECONDS
from common.testing.outage import database_outage
from common.testing.process import run_python
from core.env import WEB_SERVER_FLAG


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


# In a fresh process that serves with a connection pool (as uvicorn's does) on a
# database that never answers: every request waits DB_POOL_TIMEOUT for a
# connection, then psycopg_pool gives up. Prints each answer's status,
# Retry-After and body.
POOL_TIMEOUT_SCRIPT = """
import json
import django
django.setup()
from django.test import Client

client = Client(raise_request_exception=False)
client.cookies["sessionid"] = "s" * 32  # a signed-in page reads its session first
answers = [
    client.get("/api/credits/balance/", HTTP_AUTHORIZATION="Bearer qs_0123456789ab_secret"),
    client.get("/services/"),
]
print(json.dumps([
    [answer.status_code, answer.get("Retry-After"), answer.content.decode()]
    for answer in answers
]))
"""


def test_a_pool_that_times_out_answers_503_on_the_api_and_on_pages():
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DJANGO_"))}
    environ.update(
        DATABASE_URL="postgres://nobody@127.0.0.1:1/none",
        DB_POOL_TIMEOUT="1",
        DJANGO_SETTINGS_MODULE="core.settings",
        LOG_LEVEL="CRITICAL",
        **{WEB_SERVER_FLAG: "true"},
    )
    result = run_python(["-c", POOL_TIMEOUT_SCRIPT], environ)
    assert result.returncode == 0, result.stderr
    api, page = json.loads(result.stdout.strip().splitlines()[-1])

    assert api[:2] == [503, str(RETRY_AFTER_SECONDS)]
    assert json.loads(api[2])["error"]["code"] == "service_unavailable"
    assert page[:2] == [503, str(RETRY_AFTER_SECONDS)]
    assert "cannot reach its database" in page[2]
