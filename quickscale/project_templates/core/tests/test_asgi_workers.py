"""The ASGI module starts in every uvicorn worker process, as the Docker image runs it.

With ``--workers N`` (``WEB_CONCURRENCY`` in the image) uvicorn imports the
application inside each worker's running event loop, where Django refuses
synchronous database access; the start-up check must still run there.
"""

import os
import urllib.request

import pytest

from common.testing.database import session_database_url
from common.testing.production import production_env
from common.testing.server import uvicorn


def health(port: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/health/", headers={"Host": "example.com"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        status: int = response.status
        return status


@pytest.mark.django_db(transaction=True)  # the server processes read the committed database
@pytest.mark.parametrize("production", [False, True], ids=["development", "production"])
def test_every_worker_process_starts_and_serves(tmp_path, production):
    if production:
        env = production_env(DATABASE_URL=session_database_url(), SECURE_SSL_REDIRECT="False")
    else:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env["DATABASE_URL"] = session_database_url()
        env["ALLOWED_HOSTS"] = "example.com"  # the host asked for, whatever .env allows
    log = tmp_path / "uvicorn.log"
    with uvicorn(env, log, ["--workers", "2"]) as (port, process):
        statuses = [health(port) for _ in range(6)]
        assert process.poll() is None
    assert statuses == [200] * 6
    assert "SynchronousOnlyOperation" not in log.read_text()
