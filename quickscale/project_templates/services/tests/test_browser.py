"""Service and job pages in a real Chromium (fixtures: common/testing/browser.py).

htmx posts the form and swaps the panel in place; the navbar balance comes with
it, out of band. A job's page polls its panel while the job runs (a worker
thread here runs the queue) and stops once it has ended.
"""

import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import expect

from common.testing.browser import log_in
from common.testing.tasks import run_queued_tasks
from credits import ledger
from services.base import BaseService
from services.configuration import ensure_service_rows
from services.forms import BatchTextInputForm
from services.models import Job, Service
from services.registry import register_service
from services.validation import clean_text_list
from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def credits_in_navbar(page: Any, amount: int) -> None:
    """The navbar shows ``amount`` credits available, written once (``5``, not ``5.00``)."""
    expect(page.locator("#navbar-credits")).to_have_text(re.compile(rf"Credits\s+{amount}\s*$"))


def test_a_paid_run_shows_its_result_and_the_new_balance_without_a_page_load(page: Any):
    ensure_service_rows()
    user = make_user("runner@example.com")
    ledger.grant(user, 5, source="admin", reference="browser-run")
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("runner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    credits_in_navbar(page, 5)

    page.goto("/services/text_sentiment_analysis/")
    page.evaluate("window.sameDocument = true")  # gone after any full page load
    page.get_by_label("Text").fill("What a wonderful, delightful day.")
    page.get_by_role("button", name="Run (1 credit)").click()

    expect(page.locator("#sentiment-label")).to_have_text("Positive")
    credits_in_navbar(page, 4)
    assert ledger.balance(user).total == 4

    page.get_by_label("Text").fill("   ")  # passes the browser's check, not the service's
    page.get_by_role("button", name="Run (1 credit)").click()
    expect(page.get_by_text("The text is empty.")).to_be_visible()
    credits_in_navbar(page, 4)
    assert ledger.balance(user).total == 4
    assert page.evaluate("window.sameDocument") is True


# --------------------------------------------------------------------------- background jobs


def _log_in_funded(page: Any, email: str, credits: int) -> Any:
    ensure_service_rows()
    user = make_user(email)
    ledger.grant(user, credits, source="admin", reference=f"browser-{email}")
    log_in(page, email, PASSWORD)
    credits_in_navbar(page, credits)
    return user


def _worker() -> threading.Thread:
    """Run the queued tasks in a thread of its own, as a worker process would."""

    def work() -> None:
        try:
            run_queued_tasks()
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def gated_batch(isolated_registry: None) -> Iterator[threading.Event]:
    """A long-running service over its texts that stops after the first until the gate opens."""
    gate = threading.Event()

    @register_service("test_gated_batch")
    class GatedBatch(BaseService):
        long_running = True
        form_class = BatchTextInputForm

        def validate_input(self, **inputs: Any) -> dict[str, Any]:
            return {"texts": clean_text_list(inputs.get("texts"))}

        def billable_units(self, cleaned: dict[str, Any]) -> int:
            return len(cleaned["texts"])

        def execute_job(self, job: Any, **kwargs: Any) -> dict[str, Any]:
            texts = kwargs["texts"]
            for number, _ in enumerate(texts, start=1):
                job.charge(1)
                job.progress(100 * number / len(texts), f"{number} of {len(texts)} texts")
                if number == 1:
                    assert gate.wait(timeout=60), "the test never opened the gate"
            return {"texts": len(texts), "words": sum(len(text.split()) for text in texts)}

    Service.objects.create(name="test_gated_batch", credit_cost=Decimal("1.00"))
    yield gate
    gate.set()  # a failed test must not leave the worker waiting


def test_a_batch_job_shows_its_progress_then_its_result_without_a_reload(
    page: Any, gated_batch: threading.Event
):
    user = _log_in_funded(page, "batcher@example.com", 5)
    page.goto("/services/test_gated_batch/")
    page.get_by_label("Texts").fill("one two\nthree four five")
    page.get_by_role("button", name="Start job").click()

    expect(page.locator("#job-state")).to_contain_text("Queued")
    job = Job.objects.get(owner=user)
    assert page.url.endswith(f"/services/jobs/{job.pk}/")
    page.evaluate("window.sameDocument = true")  # gone after any full page load
    worker = _worker()

    # The page polls: the worker's report after the first text shows without a reload.
    expect(page.locator("#job-progress-text")).to_contain_text("50% · 1 of 2 texts")
    expect(page.locator("#job-state")).to_contain_text("Running")
    expect(page.locator("#job-panel progress")).to_have_attribute("value", "50")

    gated_batch.set()
    worker.join(timeout=30)
    expect(page.locator("#job-state")).to_contain_text("Succeeded")
    expect(page.locator("#job-result")).to_contain_text("words")
    expect(page.locator("#job-charged")).to_have_text(re.compile(r"^\s*2\b"))
    # The last fragment brought the settled balance, and no polling trigger.
    credits_in_navbar(page, 3)
    assert page.locator("#job-panel").get_attribute("hx-trigger") is None
    assert page.evaluate("window.sameDocument") is True
    page.console.assert_clean()


def test_a_sentiment_batch_gives_a_csv_download_and_a_queued_job_can_be_cancelled(page: Any):
    user = _log_in_funded(page, "csv@example.com", 5)
    page.goto("/services/batch_sentiment_analysis/")
    page.get_by_label("Texts").fill("I adore this.\nThis is dreadful.")
    page.get_by_role("button", name="Start job").click()
    expect(page.locator("#job-state")).to_contain_text("Queued")
    _worker().join(timeout=30)
    expect(page.locator("#job-state")).to_contain_text("Succeeded")
    expect(page.locator("#batch-counts")).to_contain_text("Negative 1")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download sentiment.csv").click()
    assert download.value.suggested_filename == "sentiment.csv"

    # A second job, cancelled while it waits: confirmed in a dialog, swapped in place.
    page.goto("/services/batch_sentiment_analysis/")
    page.get_by_label("Texts").fill("Never scored.")
    page.get_by_role("button", name="Start job").click()
    expect(page.locator("#job-state")).to_contain_text("Queued")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#job-state")).to_contain_text("Cancelled")
    expect(page.locator("#job-panel")).to_contain_text("nothing was charged")

    page.get_by_role("link", name="Jobs", exact=True).click()
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Cancelled")
    expect(rows.nth(1)).to_contain_text("Succeeded")
    assert ledger.balance(user).total == Decimal("4.60")  # two texts at 0.20
    page.console.assert_clean()
