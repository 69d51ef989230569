"""Django admin for jobs: read-only, the result file never linked, staff can cancel."""

from decimal import Decimal

import pytest
from django.urls import reverse

from common.testing.tasks import run_queued_tasks
from credits import ledger
from services.models import Job
from services.registry import create_service_instance
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(make_user("root@example.com", is_staff=True, is_superuser=True))
    return client


def test_staff_cancel_a_queued_job_and_its_credits_are_freed(
    superuser_client, user, fund, counting_service, enqueue
):
    fund(user, 10)
    job = enqueue(counting_service.service, user, items=2)

    page = superuser_client.get(reverse("admin:services_job_changelist"))
    assert page.status_code == 200 and str(user.email) in page.content.decode()
    superuser_client.post(
        reverse("admin:services_job_changelist"),
        {"action": "cancel", "_selected_action": [str(job.pk)]},
    )

    job.refresh_from_db()
    assert job.state == "cancelled"
    assert ledger.balance(user).available == Decimal("10.00")


def test_a_jobs_page_names_its_result_file_without_linking_it(
    superuser_client, user, fund, default_services, enqueue, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    fund(user, 5)
    job = enqueue(create_service_instance("batch_sentiment_analysis"), user, texts="Good\nBad")
    run_queued_tasks()
    job.refresh_from_db()

    page = superuser_client.get(reverse("admin:services_job_change", args=[job.pk]))

    html = page.content.decode()
    assert page.status_code == 200 and job.result_file.name in html
    assert f'href="{job.result_file.url}"' not in html
    assert superuser_client.get(reverse("admin:services_job_add")).status_code == 403
    assert Job.objects.count() == 1
