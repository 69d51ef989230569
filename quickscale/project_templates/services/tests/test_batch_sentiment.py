"""The default long-running service: batch sentiment, charged per text, with a CSV file."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.storage import default_storage

from common.testing.tasks import run_queued_tasks
from credits import ledger
from credits.models import LedgerEntry
from services.defaults.batch_sentiment_analysis import BatchSentimentAnalysis
from services.exceptions import ServiceInputError
from services.jobs import JobContext, cancel_job
from services.models import Job, Service
from services.registry import create_service_instance, register_service
from services.validation import MAX_BATCH_CHARS, MAX_BATCH_TEXT_CHARS, MAX_BATCH_TEXTS

pytestmark = pytest.mark.django_db

NAME = "batch_sentiment_analysis"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def validate(**inputs: Any) -> list[str]:
    texts: list[str] = create_service_instance(NAME).validate_input(**inputs)["texts"]
    return texts


def test_texts_come_one_per_line_or_as_a_list():
    assert validate(texts="Great day\n\n  \nAwful food\n") == ["Great day", "Awful food"]
    assert validate(texts=["Great day", "Awful\nfood"]) == ["Great day", "Awful\nfood"]


@pytest.mark.parametrize(
    ("texts", "says"),
    [
        pytest.param("", "no texts", id="empty"),
        pytest.param(" \n \n", "no texts", id="blank lines"),
        pytest.param([], "no texts", id="empty list"),
        pytest.param(["fine", 3], "Text 2", id="not a string"),
        pytest.param(["fine", "  "], "Text 2", id="blank item"),
        pytest.param(["bad\x00bytes"], "binary", id="binary"),
        pytest.param(["x" * (MAX_BATCH_TEXT_CHARS + 1)], "limit", id="a text too long"),
        pytest.param(["t"] * (MAX_BATCH_TEXTS + 1), f"limit is {MAX_BATCH_TEXTS}", id="too many"),
        pytest.param(("x" * 1999 + "\n") * 101, "characters", id="too long in all"),
        pytest.param({"a": "b"}, "list of strings", id="an object"),
    ],
)
def test_unusable_batches_are_refused_with_the_reason(texts, says):
    with pytest.raises(ServiceInputError) as refused:
        validate(texts=texts)

    assert says in refused.value.details["texts"][0]


def test_a_batch_at_the_total_limit_passes():
    texts = ["x" * MAX_BATCH_TEXT_CHARS] * (MAX_BATCH_CHARS // MAX_BATCH_TEXT_CHARS)
    assert len(validate(texts=texts)) == len(texts)


def test_an_unknown_field_is_refused():
    with pytest.raises(ServiceInputError):
        validate(texts="ok", text="also")


def test_it_runs_only_as_a_job_and_is_charged_per_text(user, fund, default_services, enqueue):
    fund(user, 5)
    service = create_service_instance(NAME)
    assert service.long_running

    job = enqueue(service, user, texts="I love this!\nThis is terrible.\nThe box is brown.")
    assert job.credits_held == Decimal("0.60")
    run_queued_tasks()

    job.refresh_from_db()
    assert (job.state, job.credits_charged, job.progress) == ("succeeded", Decimal("0.60"), 100)
    assert job.result is not None
    assert [row["label"] for row in job.result["results"]] == ["positive", "negative", "neutral"]
    assert job.result["counts"] == {"positive": 1, "neutral": 1, "negative": 1}
    assert (job.result["texts"], job.result["processed"]) == (3, 3)
    assert ledger.balance(user).total == Decimal("4.40")
    assert job.progress_message == "3 of 3 texts"


def test_its_cost_per_text_follows_the_service_row(user, fund, default_services, enqueue):
    Service.objects.filter(name=NAME).update(credit_cost=Decimal("0.05"))
    fund(user, 5)

    job = enqueue(create_service_instance(NAME), user, texts=["good", "bad", "fine", "ok"])
    run_queued_tasks()

    job.refresh_from_db()
    assert (job.credits_held, job.credits_charged) == (Decimal("0.20"), Decimal("0.20"))


def test_the_result_file_is_a_private_csv_of_every_text(user, fund, default_services, enqueue):
    fund(user, 5)
    texts = ["I love it", '=HYPERLINK("http://evil")', "Plain, with a comma"]

    job = enqueue(create_service_instance(NAME), user, texts=texts)
    run_queued_tasks()

    job.refresh_from_db()
    folder, secret, file_name = job.result_file.name.split("/")
    assert (folder, file_name) == ("job_results", "sentiment.csv")
    assert len(secret) >= 32  # a random folder: the path cannot be guessed
    with default_storage.open(job.result_file.name) as stored:
        rows = list(csv.reader(io.StringIO(stored.read().decode("utf-8"))))
    assert rows[0] == ["index", "label", "compound", "confidence", "pos", "neu", "neg", "text"]
    assert [row[0] for row in rows[1:]] == ["1", "2", "3"]
    assert [row[7] for row in rows[1:]] == [
        "I love it",
        '\'=HYPERLINK("http://evil")',  # a formula is written as text
        "Plain, with a comma",
    ]
    assert rows[1][1] == "positive"


@pytest.fixture
def cancelled_after_first_report(isolated_registry, default_services):
    """The batch service whose owner cancels right after its first progress report."""

    @register_service("test_batch_cancelled")
    class CancelledAfterFirstReport(BatchSentimentAnalysis):
        def execute_job(self, job: JobContext, **kwargs: Any) -> dict[str, Any]:
            report = job.progress

            def progress_then_cancel(percent: float, message: str = "") -> None:
                report(percent, message)
                cancel_job(job.user, job.job_id)

            job.progress = progress_then_cancel  # type: ignore[method-assign]
            return super().execute_job(job, **kwargs)

    Service.objects.create(name="test_batch_cancelled", credit_cost=Decimal("0.20"))
    return CancelledAfterFirstReport()


def test_a_cancelled_batch_stops_pays_for_the_texts_it_scored_and_keeps_them(
    user, fund, cancelled_after_first_report, enqueue
):
    fund(user, 5)

    job = enqueue(cancelled_after_first_report, user, texts=["good", "bad", "fine", "ok"])
    run_queued_tasks()

    job.refresh_from_db()
    assert job.state == "cancelled"
    # Text 1 was reported; text 2 was scored before its report saw the cancel.
    assert (job.units_processed, job.credits_charged) == (2, Decimal("0.40"))
    assert job.result is not None and job.result["processed"] == 2
    assert not job.result_file
    consumed = LedgerEntry.objects.filter(key=job.hold_key).values_list("amount", flat=True)
    assert list(consumed) == [Decimal("-0.40")]
    assert ledger.balance(user).total == Decimal("4.60")
    assert list(Job.objects.values_list("state", flat=True)) == ["cancelled"]
