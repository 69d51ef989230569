"""The upcoming-renewal email can be switched off, from its own one-click link."""

from typing import Any

import pytest
from django.test import Client

from stripe_manager.emails import upcoming_renewal_email
from users.models import Profile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.SITE_URL = "http://localhost:8000"


def test_the_renewal_email_unsubscribes_itself_only(user):
    email = upcoming_renewal_email(user.pk, "20.00", "usd", None)
    assert email is not None
    headers = dict(email.headers)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    assert url in email.body and url in email.html

    assert Client().post(url.removeprefix("http://localhost:8000")).status_code == 200
    profile = Profile.objects.get(user=user)
    assert (profile.email_renewal, profile.email_low_balance, profile.email_expiry) == (
        False,
        True,
        True,
    )
    assert upcoming_renewal_email(user.pk, "20.00", "usd", None) is None
