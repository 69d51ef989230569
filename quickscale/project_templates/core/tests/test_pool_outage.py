"""A web server whose pool cannot get a connection answers 503, on the API and on pages."""

import json
import os

from common.outage import RETRY_AFTER_SECONDS
from common.testing.process import run_python
from core.env import WEB_SERVER_FLAG

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
        # The test client's host, whatever ALLOWED_HOSTS the project's .env sets.
        ALLOWED_HOSTS="testserver",
        **{WEB_SERVER_FLAG: "true"},
    )
    result = run_python(["-c", POOL_TIMEOUT_SCRIPT], environ)
    assert result.returncode == 0, result.stderr
    api, page = json.loads(result.stdout.strip().splitlines()[-1])

    assert api[:2] == [503, str(RETRY_AFTER_SECONDS)]
    assert json.loads(api[2])["error"]["code"] == "service_unavailable"
    assert page[:2] == [503, str(RETRY_AFTER_SECONDS)]
    assert "cannot reach its database" in page[2]
