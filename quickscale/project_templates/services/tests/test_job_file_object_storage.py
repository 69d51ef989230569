"""A job's result file on S3-compatible object storage (S3_BUCKET set), against a real S3 server.

The worker stores the file in the bucket (``JobContext.attach_file`` through the
default storage); the owner downloads it through the app, which checks the owner
and streams it as an attachment. The object itself is stored as an attachment of
a generic type, so even a signed URL to it could not show it as a page.
"""

import csv
import io
from pathlib import Path

import pytest
from django.urls import reverse

from common.testing.tasks import run_queued_tasks
from services.models import Job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_services")]
BATCH = "batch_sentiment_analysis"


@pytest.fixture
def finished_job(
    client, member, media_bucket, django_capture_on_commit_callbacks, settings, tmp_path
) -> Job:
    """The batch service's job, started from its page and run by the worker."""
    settings.MEDIA_ROOT = tmp_path  # empty: shows the file went to the bucket, not to disk
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("services:detail", args=[BATCH]),
            {"texts": "I love this.\nThis is terrible."},
        )
    run_queued_tasks()
    job = Job.objects.get()
    assert job.state == Job.State.SUCCEEDED
    return job


def test_the_result_file_is_stored_in_the_bucket_as_an_attachment(
    finished_job, media_bucket, settings
):
    head = media_bucket.head(finished_job.result_file.name)
    assert head is not None
    assert head["ContentType"] == "application/octet-stream"
    assert head["ContentDisposition"] == "attachment"
    assert media_bucket.body(finished_job.result_file.name).startswith(b"index,label")
    assert not (Path(settings.MEDIA_ROOT) / "job_results").exists()


def test_the_owner_downloads_the_result_file_from_the_bucket(client, finished_job):
    response = client.get(reverse("services:job_download", args=[finished_job.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="sentiment.csv"'
    assert response["X-Content-Type-Options"] == "nosniff"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row[1] for row in rows[1:]] == ["positive", "negative"]


def test_another_user_cannot_download_it(client, finished_job, other_user):
    client.force_login(other_user)
    assert client.get(reverse("services:job_download", args=[finished_job.pk])).status_code == 404


def test_a_file_gone_from_the_bucket_is_a_404(client, finished_job, media_bucket):
    media_bucket.client.delete_object(Bucket=media_bucket.name, Key=finished_job.result_file.name)
    assert client.get(reverse("services:job_download", args=[finished_job.pk])).status_code == 404
