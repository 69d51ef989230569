"""Background jobs through the API: queue (202 + Location), follow, cancel, list, download.

The queue is the real one (django-tasks-db's table). A test's transaction never
commits, so the on-commit hook that enqueues a job's task is run by
``django_capture_on_commit_callbacks``; ``run_queued_tasks`` plays the worker.
"""

import csv
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from api.services import api_key_create
from common.testing.tasks import queued_task_names, run_queued_tasks
from credits import ledger
from credits.tests.factories import ledger_state
from services.jobs import enqueue_job
from services.models import Job, ServiceUsage
from services.registry import create_service_instance

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_services")]

BATCH = "/api/services/batch_sentiment_analysis/run"
TEXTS = ["I love it.", "I hate it.", "It is a chair."]


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["success"] is False
    assert body["data"] is None
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """``post(url, body, auth)``: a JSON POST whose on-commit hooks (the job's task) run."""

    def call(url: str, body: Any, auth: dict[str, str]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, json.dumps(body), content_type="application/json", **auth)

    return call


@pytest.fixture
def funded(user, fund):
    fund(user, 10)
    return user


@pytest.fixture
def other_auth(other_user):
    return {"HTTP_AUTHORIZATION": f"Bearer {api_key_create(other_user, name='other')[1]}"}


def start_batch(post, auth, texts=TEXTS) -> dict[str, Any]:
    response = post(BATCH, {"input": {"texts": texts}}, auth)
    assert response.status_code == 202, response.content
    data: dict[str, Any] = response.json()["data"]
    return data


# --------------------------------------------------------------------------- queueing


def test_a_long_running_service_answers_202_with_the_job_and_its_location(
    post, auth, funded, client
):
    response = post(BATCH, {"input": {"texts": TEXTS}}, auth)
    body = response.json()
    assert response.status_code == 202
    assert body["success"] is True and body["error"] is None
    job = body["data"]
    assert response["Location"] == f"/api/jobs/{job['id']}" == job["url"]
    assert job["service"] == "batch_sentiment_analysis"
    assert job["state"] == "queued"
    assert job["origin"] == "api"
    assert (job["units"], job["credits_held"], job["credits_charged"]) == (3, "0.60", "0.00")
    assert job["result"] is None and job["download_url"] is None
    stored = Job.objects.get(pk=job["id"])
    assert stored.owner == funded
    assert stored.api_key_job.key.user == funded  # which key queued it, for its owner and staff
    assert queued_task_names() == ["services.tasks.run_job"]
    balance = client.get("/api/credits/balance/", **auth).json()["data"]
    assert (balance["total"], balance["reserved"], balance["available"]) == (
        "10.00",
        "0.60",
        "9.40",
    )


def test_async_true_makes_a_job_of_a_normal_service(post, auth, funded):
    response = post(
        "/api/services/text_sentiment_analysis/run",
        {"input": {"text": "What a lovely day."}, "async": True},
        auth,
    )
    assert response.status_code == 202
    job_id = response.json()["data"]["id"]
    assert not ServiceUsage.objects.exists()  # nothing ran yet
    run_queued_tasks()
    job = Job.objects.get(pk=job_id)
    assert job.state == Job.State.SUCCEEDED
    assert job.result is not None
    assert job.result["label"] == "positive"
    assert ledger.balance(funded).total == Decimal("9.00")


def test_async_false_runs_a_normal_service_at_once(post, auth, funded):
    response = post(
        "/api/services/text_sentiment_analysis/run",
        {"input": {"text": "What a lovely day."}, "async": False},
        auth,
    )
    assert response.status_code == 200
    assert response.json()["data"]["result"]["label"] == "positive"
    assert not Job.objects.exists()


def test_the_services_list_says_which_services_run_as_jobs(client, auth):
    rows = {row["name"]: row for row in client.get("/api/services/", **auth).json()["data"]}
    assert rows["batch_sentiment_analysis"]["runs_as_job"] is True
    assert rows["text_sentiment_analysis"]["runs_as_job"] is False


# --------------------------------------------------------------------------- following


def test_a_job_goes_from_queued_to_succeeded_with_its_result_and_file(client, post, auth, funded):
    job = start_batch(post, auth)
    queued = client.get(job["url"], **auth).json()["data"]
    assert (queued["state"], queued["progress"], queued["started_at"]) == ("queued", 0, None)

    run_queued_tasks()
    done = client.get(job["url"], **auth).json()["data"]
    assert done["state"] == "succeeded"
    assert done["progress"] == 100
    assert done["message"] == "3 of 3 texts"
    assert done["units_processed"] == 3
    assert done["credits_charged"] == "0.60"
    assert done["error"] is None
    assert done["started_at"] and done["finished_at"]
    assert [row["label"] for row in done["result"]["results"]] == [
        "positive",
        "negative",
        "neutral",
    ]
    assert done["download_url"] == f"/api/jobs/{job['id']}/file"
    assert ledger.balance(funded).total == Decimal("9.40")

    download = client.get(done["download_url"], **auth)
    assert download.status_code == 200
    assert download["Content-Type"] == "text/csv"
    assert download["Content-Disposition"] == 'attachment; filename="sentiment.csv"'
    assert download["X-Content-Type-Options"] == "nosniff"
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(rows) == 4


def test_a_failed_job_reports_why_and_charges_nothing(client, post, auth, funded):
    from services.models import Service

    job = start_batch(post, auth)
    Service.objects.filter(name="batch_sentiment_analysis").update(is_active=False)
    run_queued_tasks()
    data = client.get(job["url"], **auth).json()["data"]
    assert data["state"] == "failed"
    assert "switched off" in data["error"]
    assert data["credits_charged"] == "0.00"
    assert ledger.balance(funded).total == Decimal("10.00")


def test_another_users_job_is_a_404_like_a_missing_one(client, post, auth, funded, other_auth):
    job = start_batch(post, auth)
    run_queued_tasks()
    for url in (job["url"], f"{job['url']}/file", f"/api/jobs/{uuid.uuid4()}"):
        assert_error(client.get(url, **other_auth), 404, "not_found")


def test_a_job_id_that_is_not_a_uuid_is_a_422_naming_it(client, auth):
    error = assert_error(client.get("/api/jobs/42", **auth), 422, "validation_error")
    assert "job_id" in error["details"]["fields"]


def test_a_job_without_a_file_has_no_download(client, post, auth, funded):
    job = start_batch(post, auth)
    assert_error(client.get(f"{job['url']}/file", **auth), 404, "not_found")


def test_job_endpoints_need_a_key(client, post, auth, funded):
    job = start_batch(post, auth)
    for response in (
        client.get("/api/jobs/"),
        client.get(job["url"]),
        client.delete(job["url"]),
        client.get(f"{job['url']}/file"),
    ):
        assert_error(response, 401, "missing_api_key")
    assert Job.objects.get().state == Job.State.QUEUED


# --------------------------------------------------------------------------- cancelling


def test_deleting_a_queued_job_cancels_it_and_releases_its_hold(client, post, auth, funded):
    job = start_batch(post, auth)
    response = client.delete(job["url"], **auth)
    data = response.json()["data"]
    assert response.status_code == 200
    assert data["state"] == "cancelled"
    assert data["finished_at"]
    assert ledger.balance(funded).reserved == 0
    run_queued_tasks()  # its task finds it cancelled and runs nothing
    assert client.get(job["url"], **auth).json()["data"]["state"] == "cancelled"
    assert ledger.balance(funded).total == Decimal("10.00")


def test_deleting_a_running_job_asks_it_to_stop_and_answers_202(client, post, auth, funded):
    job = start_batch(post, auth)
    Job.objects.filter(pk=job["id"]).update(state=Job.State.RUNNING)  # a worker has taken it
    response = client.delete(job["url"], **auth)
    data = response.json()["data"]
    assert response.status_code == 202
    assert (data["state"], data["cancel_requested"]) == ("running", True)


def test_deleting_a_finished_job_is_a_409_and_changes_nothing(client, post, auth, funded):
    job = start_batch(post, auth)
    run_queued_tasks()
    before = ledger_state()
    error = assert_error(client.delete(job["url"], **auth), 409, "job_finished")
    assert error["details"] == {"state": "succeeded"}
    assert ledger_state() == before
    assert Job.objects.get().state == Job.State.SUCCEEDED


def test_deleting_another_users_job_is_a_404_and_changes_nothing(
    client, post, auth, funded, other_auth
):
    job = start_batch(post, auth)
    assert_error(client.delete(job["url"], **other_auth), 404, "not_found")
    assert_error(client.delete(f"/api/jobs/{uuid.uuid4()}", **auth), 404, "not_found")
    stored = Job.objects.get()
    assert (stored.state, stored.cancel_requested) == (Job.State.QUEUED, False)
    assert ledger.balance(funded).reserved == Decimal("0.60")


# --------------------------------------------------------------------------- the list


def test_the_list_is_the_key_owners_jobs_newest_first_and_paginated(
    client, post, auth, funded, other_auth, other_user, fund
):
    fund(other_user, 5)
    first = start_batch(post, auth, ["one"])
    second = start_batch(post, auth, ["two", "three"])
    start_batch(post, other_auth, ["not yours"])
    # One started on the web page is listed too: a user's jobs are theirs wherever begun.
    web = enqueue_job(
        create_service_instance("batch_sentiment_analysis"),
        funded,
        origin="web",
        inputs={"texts": "four"},
    )
    data = client.get("/api/jobs/", **auth).json()["data"]
    assert [item["id"] for item in data["items"]] == [str(web.pk), second["id"], first["id"]]
    assert data["items"][0]["origin"] == "web"
    assert (data["total"], data["has_next"]) == (3, False)
    assert "result" not in data["items"][0]  # a list leaves results out: GET the job

    page = client.get("/api/jobs/?page=2&page_size=2", **auth).json()["data"]
    assert [item["id"] for item in page["items"]] == [first["id"]]
    assert (page["page"], page["page_size"], page["has_next"]) == (2, 2, False)
    first_page = client.get("/api/jobs/?page_size=2", **auth).json()["data"]
    assert first_page["has_next"] is True


def test_bad_list_parameters_are_a_422_naming_them(client, auth):
    error = assert_error(client.get("/api/jobs/?page_size=1000", **auth), 422, "validation_error")
    assert "page_size" in error["details"]["fields"]


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def unchanged(funded):
    """Assert, after the test, that no credit moved and no job was queued."""
    before = ledger_state()
    yield
    assert ledger_state() == before
    assert not Job.objects.exists()
    assert queued_task_names() == []


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"input": {"texts": TEXTS}, "async": "yes"}, "async", id="async-not-bool"),
        pytest.param({"input": {"texts": TEXTS}, "async": 1}, "async", id="async-number"),
        pytest.param({"input": {"texts": []}}, "texts", id="no-texts"),
        pytest.param({"input": {"texts": "   "}}, "texts", id="blank-texts"),
        pytest.param({"input": {"texts": [1, 2]}}, "texts", id="texts-not-strings"),
        pytest.param({"input": {"texts": ["x"] * 501}}, "texts", id="too-many-texts"),
        pytest.param({"input": {"texts": TEXTS, "extra": 1}}, "extra", id="unknown-field"),
        pytest.param({"input": {}}, "input", id="empty-input"),
        pytest.param({"texts": TEXTS}, "input", id="no-input-object"),
    ],
)
def test_malformed_job_requests_are_a_422_and_queue_nothing(post, auth, body, field):
    error = assert_error(post(BATCH, body, auth), 422, "invalid_input")
    assert field in error["details"]["fields"]


@pytest.mark.usefixtures("unchanged")
def test_a_body_that_is_not_json_is_a_422_and_queues_nothing(client, auth):
    response = client.post(BATCH, b"{not json", content_type="application/json", **auth)
    assert_error(response, 422, "invalid_input")


@pytest.mark.usefixtures("unchanged")
def test_a_batch_the_balance_cannot_cover_is_a_402_and_queues_nothing(post, auth):
    texts = [f"text {n}" for n in range(60)]  # 60 x 0.20 = 12 > 10
    response = post(BATCH, {"input": {"texts": texts}}, auth)
    error = assert_error(response, 402, "insufficient_credits")
    assert error["details"] == {"required": "12.00", "available": "10.00"}


@pytest.mark.usefixtures("unchanged")
def test_a_long_running_service_sent_a_file_is_a_422_saying_it_cannot_wait(
    client, auth, isolated_registry
):
    """A job's inputs wait in the database: an upload cannot be queued."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from services.base import BaseService
    from services.models import Service
    from services.registry import register_service

    @register_service("test_api_file_job")
    class FileJob(BaseService):
        long_running = True

        def validate_input(self, **inputs):
            return {"document": inputs["document"]}

    Service.objects.create(name="test_api_file_job", credit_cost=Decimal("1.00"))
    upload = SimpleUploadedFile("a.txt", b"some text", content_type="text/plain")
    response = client.post("/api/services/test_api_file_job/run", {"document": upload}, **auth)
    error = assert_error(response, 422, "async_not_supported")
    assert "cannot run in the background" in error["message"]


@pytest.mark.usefixtures("unchanged")
def test_a_queued_call_to_an_unknown_or_switched_off_service_is_a_404(post, auth):
    from services.models import Service

    assert_error(
        post("/api/services/nothing_here/run", {"input": {"x": 1}, "async": True}, auth),
        404,
        "not_found",
    )
    Service.objects.filter(name="batch_sentiment_analysis").update(is_active=False)
    assert_error(post(BATCH, {"input": {"texts": TEXTS}}, auth), 404, "not_found")


# --------------------------------------------------------------------------- schema


def test_the_schema_documents_the_job_endpoints_and_their_statuses(client):
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    run = paths["/api/services/{name}/run"]["post"]
    assert run["responses"]["202"]["headers"]["Location"]["required"] is True
    body = run["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["async"]["type"] == "boolean"
    assert set(paths["/api/jobs/{job_id}"]) == {"get", "delete"}
    cancel = paths["/api/jobs/{job_id}"]["delete"]["responses"]
    assert {"200", "202", "404", "409"} <= set(cancel)
    assert "get" in paths["/api/jobs/"]
    file_answer = paths["/api/jobs/{job_id}/file"]["get"]["responses"]["200"]
    assert "*/*" in file_answer["content"]


def test_a_key_owner_at_the_active_jobs_cap_gets_429_and_nothing_is_queued(
    post, auth, funded, settings
):
    settings.JOB_MAX_ACTIVE_PER_USER = 1
    start_batch(post, auth)
    before, tasks = ledger_state(), queued_task_names()

    error = assert_error(
        post(BATCH, {"input": {"texts": TEXTS}}, auth), 429, "too_many_active_jobs"
    )

    assert error["details"] == {"limit": 1}
    assert ledger_state() == before and queued_task_names() == tasks
    assert Job.objects.count() == 1
