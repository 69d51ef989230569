"""A page form with more fields than Django reads (1,000) is a 400, never a 500.

Django raises ``TooManyFieldsSent`` while reading the body (in the CSRF check
or in the view); its handler answers 400 in production and in development.
"""

import pytest
from django.test import Client

from public.models import ContactMessage
from users.models import Profile
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

TOO_MANY = {f"field{index}": "x" for index in range(1001)}


@pytest.mark.parametrize("debug", [False, True], ids=["production", "development"])
@pytest.mark.parametrize("csrf", [True, False], ids=["csrf checked", "csrf exempt"])
def test_the_contact_form_with_1001_fields_is_a_400_and_stores_nothing(settings, debug, csrf):
    settings.DEBUG = debug
    client = Client(enforce_csrf_checks=csrf, raise_request_exception=False)
    client.get("/contact/")  # the CSRF cookie
    fields = {**TOO_MANY, "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    fields |= {"name": "A", "email": "a@example.com", "subject": "Hi", "message": "Hello"}
    assert client.post("/contact/", fields).status_code == 400
    assert not ContactMessage.objects.exists()


@pytest.mark.parametrize("debug", [False, True], ids=["production", "development"])
def test_the_profile_form_with_1001_fields_is_a_400_and_changes_nothing(settings, debug):
    settings.DEBUG = debug
    user = make_user()
    client = Client(raise_request_exception=False)
    client.force_login(user)
    assert client.get("/accounts/profile/").status_code == 200  # creates the profile
    before = list(Profile.objects.filter(user=user).values())
    response = client.post("/accounts/profile/", {**TOO_MANY, "full_name": "Changed"})
    assert response.status_code == 400
    assert list(Profile.objects.filter(user=user).values()) == before
