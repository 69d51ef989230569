from unittest import mock

import pytest
from django.db import OperationalError
from django.urls import resolve, reverse

from common.views import health, live


@pytest.mark.django_db
def test_health_reports_ok_when_the_database_answers(client):
    response = client.get(reverse("health"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_health_answers_503_when_the_database_is_unreachable(client):
    # Fail where the process meets the database: opening the cursor.
    with mock.patch(
        "django.db.backends.base.base.BaseDatabaseWrapper.cursor",
        side_effect=OperationalError("connection refused"),
    ):
        response = client.get(reverse("health"))
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}


def test_health_refuses_writes(client):
    assert client.post(reverse("health")).status_code == 405


def test_liveness_answers_without_asking_the_database(client):
    # A database outage takes processes out of rotation (/health/), it must not
    # get them restarted: the liveness probe's endpoint never opens a cursor.
    with mock.patch(
        "django.db.backends.base.base.BaseDatabaseWrapper.cursor",
        side_effect=OperationalError("connection refused"),
    ):
        response = client.get(reverse("health_live"))
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("name", ["health", "health_live"])
@pytest.mark.django_db
def test_probes_are_answered_over_plain_http_when_https_is_enforced(client, settings, name):
    # Kubernetes' probes and the image's health check call the pod over plain HTTP.
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(reverse(name)).status_code == 200
    assert client.get("/accounts/login/").status_code == 301


def test_the_probe_paths_of_the_deployment_files_lead_to_these_views():
    # deploy/kubernetes/base/web.yaml probes these paths; the image's health check
    # asks /health/.
    assert resolve("/health/").func is health
    assert resolve("/health/live/").func is live
