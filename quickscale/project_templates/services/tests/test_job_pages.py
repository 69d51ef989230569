"""The jobs pages: start a long-running service from its page, follow it, cancel it, download.

The queue is the real one (django-tasks-db's table); a test's transaction never
commits, so the on-commit hook that enqueues a job's task is run by
``django_capture_on_commit_callbacks``, and ``run_queued_tasks`` plays the worker.
"""

import csv
import io
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from common.testing.html import elements
from common.testing.tasks import run_queued_tasks
from credits import ledger
from services.models import Job, Service

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_services")]
HTMX = {"HTTP_HX_REQUEST": "true"}
# Only a whole page has the site navigation; a fragment does not.
PAGE_SHELL = "main navigation"
BATCH = "batch_sentiment_analysis"
TEXTS = "I love this.\nThis is terrible.\nIt is a table."


@pytest.fixture
def start(client, django_capture_on_commit_callbacks):
    """``start(texts, **headers)``: submit the batch service's form; its task is queued."""

    def submit(texts: str = TEXTS, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("services:detail", args=[BATCH]), {"texts": texts}, **headers
            )

    return submit


def job_url(job: Job, view: str = "services:job") -> str:
    return reverse(view, args=[job.pk])


# --------------------------------------------------------------------------- starting a job


def test_submitting_a_long_running_service_queues_a_job_and_goes_to_its_page(member, start):
    response = start()
    job = Job.objects.get()
    assert response.status_code == 303
    assert response["Location"] == job_url(job)
    assert job.owner == member
    assert job.origin == "web"
    assert job.state == Job.State.QUEUED
    # 3 texts at 0.20 each are held, not spent: the total is intact, 0.60 is reserved.
    balance = ledger.balance(member)
    assert (balance.total, balance.reserved) == (Decimal("5.00"), Decimal("0.60"))


def test_an_htmx_submit_sends_the_browser_to_the_job_page(member, start):
    response = start(**HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == job_url(Job.objects.get())


def test_the_service_page_of_a_long_running_service_offers_to_start_a_job(client, member):
    html = client.get(reverse("services:detail", args=[BATCH])).content.decode()
    assert "Start job" in html
    assert "Runs in the background" in html
    assert reverse("services:jobs") in html


def test_bad_input_stays_on_the_form_and_queues_nothing(member, start):
    response = start("   \n  ")
    assert response.status_code == 422
    assert "There are no texts" in response.content.decode()
    assert not Job.objects.exists()
    assert ledger.balance(member).reserved == 0


def test_a_batch_the_balance_cannot_cover_is_refused_and_queues_nothing(member, start):
    response = start("\n".join(f"text {n}" for n in range(30)))  # 30 x 0.20 = 6 > 5
    assert response.status_code == 422
    assert "Insufficient credits" in response.content.decode()
    assert not Job.objects.exists()
    assert ledger.balance(member).reserved == 0


# --------------------------------------------------------------------------- following it


def test_the_job_page_shows_the_result_once_a_worker_ran_it(client, member, start):
    start()
    job = Job.objects.get()
    queued = client.get(job_url(job)).content.decode()
    assert "Queued" in queued
    assert "Cancel job" in queued

    assert run_queued_tasks() == 1
    html = client.get(job_url(job)).content.decode()
    assert "Succeeded" in html
    assert "Cancel job" not in html
    assert "positive" in html and "negative" in html
    assert "Download sentiment.csv" in html
    assert "0.60" in html  # charged: three texts
    assert ledger.balance(member).total == Decimal("4.40")


def test_the_polled_fragment_stops_polling_once_the_job_has_ended(client, member, start):
    start()
    job = Job.objects.get()
    polling = elements(client.get(job_url(job), **HTMX).content.decode())
    assert polling["job-panel"]["hx-trigger"] == "every 2s"
    assert polling["job-panel"]["hx-get"] == job_url(job)
    assert "navbar-credits" not in polling

    run_queued_tasks()
    response = client.get(job_url(job), **HTMX)
    html = response.content.decode()
    ended = elements(html)
    assert PAGE_SHELL not in html  # a fragment, not the page
    assert "hx-trigger" not in ended["job-panel"]
    assert ended["navbar-credits"]["hx-swap-oob"] == "true"  # the settle changed the balance
    assert "Succeeded" in html
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_job_page_is_its_owners_only(client, member, start, other_user):
    start()
    job = Job.objects.get()
    client.force_login(other_user)
    assert client.get(job_url(job)).status_code == 404
    assert client.get(job_url(job), **HTMX).status_code == 404
    assert client.get(f"/services/jobs/{uuid.uuid4()}/").status_code == 404
    assert client.get("/services/jobs/not-a-job/").status_code == 404


def test_job_pages_need_a_signed_in_user(client, member, start):
    start()
    job = Job.objects.get()
    client.logout()
    for url in (reverse("services:jobs"), job_url(job), job_url(job, "services:job_download")):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]
    assert client.post(job_url(job, "services:job_cancel")).status_code == 302
    assert Job.objects.get().state == Job.State.QUEUED


# --------------------------------------------------------------------------- the list


def test_the_list_shows_the_users_jobs_newest_first_and_polls_while_one_runs(
    client, member, start, other_user, fund
):
    start("first text")
    start("second text\nand another")
    first, second = Job.objects.order_by("created_at")
    html = client.get(reverse("services:jobs")).content.decode()
    assert html.index(f"job-{second.pk}") < html.index(f"job-{first.pk}")
    assert elements(html)["jobs-table"]["hx-trigger"] == "every 2s"

    run_queued_tasks()
    fragment = client.get(reverse("services:jobs"), **HTMX).content.decode()
    assert PAGE_SHELL not in fragment
    assert "hx-trigger" not in elements(fragment)["jobs-table"]
    assert fragment.count("Succeeded") >= 2

    client.force_login(other_user)
    assert str(first.pk) not in client.get(reverse("services:jobs")).content.decode()


def test_the_list_is_paginated(client, member, start, fund, settings):
    settings.JOB_MAX_ACTIVE_PER_USER = 26  # all queued at once
    fund(member, 100)
    for number in range(26):
        start(f"text {number}")
    newest = Job.objects.order_by("-created_at")[0]
    oldest = Job.objects.order_by("created_at")[0]
    page_one = client.get(reverse("services:jobs")).content.decode()
    assert f"job-{newest.pk}" in page_one
    assert f"job-{oldest.pk}" not in page_one
    assert "Jobs 1\N{EN DASH}25 of 26" in page_one
    page_two = client.get(reverse("services:jobs") + "?page=2").content.decode()
    assert f"job-{oldest.pk}" in page_two
    assert "Jobs 26\N{EN DASH}26 of 26" in page_two


def test_the_navbar_links_to_the_jobs_page(client, member):
    html = client.get(reverse("services:list")).content.decode()
    assert f'href="{reverse("services:jobs")}"' in html


# --------------------------------------------------------------------------- cancelling


def test_cancelling_a_queued_job_releases_its_hold_and_it_never_runs(client, member, start):
    start()
    job = Job.objects.get()
    response = client.post(job_url(job, "services:job_cancel"))
    assert response.status_code == 303
    assert response["Location"] == job_url(job)
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    balance = ledger.balance(member)
    assert (balance.total, balance.reserved) == (Decimal("5.00"), Decimal("0.00"))
    run_queued_tasks()
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    assert ledger.balance(member).total == Decimal("5.00")
    assert "nothing was charged" in client.get(job_url(job)).content.decode()


def test_an_htmx_cancel_swaps_the_panel_with_the_cancelled_job(client, member, start):
    start()
    job = Job.objects.get()
    response = client.post(job_url(job, "services:job_cancel"), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert PAGE_SHELL not in html
    assert "Cancelled" in html
    assert "hx-trigger" not in elements(html)["job-panel"]


def test_cancelling_a_running_job_asks_it_to_stop_at_its_next_report(client, member, start):
    start()
    job = Job.objects.get()
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING)  # a worker has taken it
    response = client.post(job_url(job, "services:job_cancel"), **HTMX)
    html = response.content.decode()
    job.refresh_from_db()
    assert job.cancel_requested is True
    assert job.state == Job.State.RUNNING
    assert "Cancelling" in html
    assert "Cancel job" not in html
    assert elements(html)["job-panel"]["hx-trigger"] == "every 2s"  # it has not ended yet


def test_cancelling_a_finished_job_is_a_409_and_changes_nothing(client, member, start):
    start()
    run_queued_tasks()
    job = Job.objects.get()
    before = ledger.balance(member)
    response = client.post(job_url(job, "services:job_cancel"))
    assert response.status_code == 409
    assert "already ended" in response.content.decode()
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED
    assert ledger.balance(member) == before


def test_cancelling_another_users_job_is_a_404_and_changes_nothing(
    client, member, start, other_user
):
    start()
    job = Job.objects.get()
    client.force_login(other_user)
    assert client.post(job_url(job, "services:job_cancel")).status_code == 404
    assert client.post(job_url(job, "services:job_cancel"), **HTMX).status_code == 404
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED
    assert job.cancel_requested is False
    assert ledger.balance(member).reserved == Decimal("0.60")


def test_cancel_takes_only_a_post(client, member, start):
    start()
    job = Job.objects.get()
    assert client.get(job_url(job, "services:job_cancel")).status_code == 405
    assert Job.objects.get().state == Job.State.QUEUED


# --------------------------------------------------------------------------- the result file


def test_the_owner_downloads_the_result_file_as_an_attachment(client, member, start):
    start()
    run_queued_tasks()
    job = Job.objects.get()
    response = client.get(job_url(job, "services:job_download"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="sentiment.csv"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:2] == ["index", "label"]
    assert [row[1] for row in rows[1:]] == ["positive", "negative", "neutral"]


def test_another_user_cannot_download_the_file(client, member, start, other_user):
    start()
    run_queued_tasks()
    job = Job.objects.get()
    client.force_login(other_user)
    assert client.get(job_url(job, "services:job_download")).status_code == 404


def test_a_job_without_a_file_has_nothing_to_download(client, member, start):
    start()
    job = Job.objects.get()
    assert client.get(job_url(job, "services:job_download")).status_code == 404  # not run yet
    assert "job-download" not in elements(client.get(job_url(job)).content.decode())


def test_a_file_gone_from_storage_is_a_404_not_a_500(client, member, start):
    start()
    run_queued_tasks()
    job = Job.objects.get()
    job.result_file.storage.delete(job.result_file.name)
    assert client.get(job_url(job, "services:job_download")).status_code == 404


def test_a_job_whose_service_was_switched_off_shows_why_it_failed(client, member, start):
    start()
    Service.objects.filter(name=BATCH).update(is_active=False)
    run_queued_tasks()
    job = Job.objects.get()
    html = client.get(job_url(job)).content.decode()
    assert "Failed" in html
    assert "switched off" in html
    assert ledger.balance(member).total == Decimal("5.00")


def test_an_old_job_is_polled_less_often(client, member, start):
    start()
    job = Job.objects.get()
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    panel = elements(client.get(job_url(job), **HTMX).content.decode())["job-panel"]
    assert panel["hx-trigger"] == "every 5s"
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=1))
    html = client.get(reverse("services:jobs"), **HTMX).content.decode()
    assert elements(html)["jobs-table"]["hx-trigger"] == "every 15s"
    # A job that has just started running is followed closely again.
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, started_at=timezone.now())
    panel = elements(client.get(job_url(job), **HTMX).content.decode())["job-panel"]
    assert panel["hx-trigger"] == "every 2s"


def test_a_user_at_the_active_jobs_cap_sees_why_on_the_service_page(member, start, settings):
    settings.JOB_MAX_ACTIVE_PER_USER = 1
    start()

    response = start()

    assert response.status_code == 429
    assert "1 jobs queued or running" in response.content.decode()
    assert Job.objects.count() == 1
    assert ledger.balance(member).reserved == Decimal("0.60")
