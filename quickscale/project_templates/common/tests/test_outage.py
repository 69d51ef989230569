"""Pages answer a branded 503 with Retry-After while the database cannot be reached.

``transaction=True``: the database is really cut off (``common.testing.outage``),
which no test transaction survives.
"""

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from common.outage import RETRY_AFTER_SECONDS
from common.testing.outage import database_outage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_in():
    """A client with a session in the database: each request reads it (and the user) there."""
    user = get_user_model().objects.create_user(email="outage@example.com", password=None)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def assert_branded_503(response: Any, settings: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    page = response.content.decode()
    assert "503" in page
    assert "cannot reach its database" in page
    assert settings.PROJECT_NAME in page  # the site's own layout, not a bare error
    assert "Content-Security-Policy" in response  # the usual headers still apply


def test_a_page_that_needs_the_database_answers_503_while_it_is_down(signed_in, settings):
    settings.PROJECT_NAME = "Outage Test Co"
    with database_outage():
        response = signed_in.get("/services/")
    assert_branded_503(response, settings)
    # Once the database is back the same page works again.
    assert signed_in.get("/services/").status_code == 200


def test_a_page_whose_error_handling_needs_the_database_answers_503_too(signed_in, settings):
    # The 404 page shows the signed-in navbar: rendering it reads the session,
    # outside any view, where Django itself turns the error into a 500.
    settings.PROJECT_NAME = "Outage Test Co"
    with database_outage():
        response = signed_in.get("/no-such-page/")
    assert_branded_503(response, settings)
    assert signed_in.get("/no-such-page/").status_code == 404


def test_other_server_errors_stay_500(signed_in, settings):
    settings.ROOT_URLCONF = "common.tests.outage_urls"
    response = signed_in.get("/broken/")
    assert response.status_code == 500
    assert "Retry-After" not in response
