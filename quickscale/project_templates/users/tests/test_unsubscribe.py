"""Optional emails: switched off on the profile or by the signed one-click link.

The emails that carry the link are tested with their builders (credits and
stripe_manager tests); here, the link, its page and the profile's switches.
"""

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from users.email_preferences import Topic, unsubscribe_token, unsubscribe_url, wants_email
from users.models import Profile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.SITE_URL = "http://localhost:8000"


def link_path(url: str) -> str:
    assert url.startswith("http://localhost:8000/accounts/unsubscribe/")
    return url.removeprefix("http://localhost:8000")


def test_a_mail_clients_one_click_post_unsubscribes_without_signing_in(user):
    url = unsubscribe_url(user, Topic.LOW_BALANCE)
    # A mail client (RFC 8058): no session, no CSRF token, this body.
    answer = Client(enforce_csrf_checks=True).post(
        link_path(url),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.content.decode()
    assert not wants_email(user, Topic.LOW_BALANCE)
    assert wants_email(user, Topic.EXPIRY) and wants_email(user, Topic.RENEWAL)


def test_opening_the_link_asks_first_and_changes_nothing(user, client):
    url = unsubscribe_url(user, Topic.RENEWAL)
    page = client.get(link_path(url))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Unsubscribe?" in text
    assert user.email in text
    assert wants_email(user, Topic.RENEWAL)

    form_action = re.search(r'<form method="post" action="([^"]+)"', text)
    assert form_action is not None
    assert client.post(form_action.group(1)).status_code == 200
    assert not wants_email(user, Topic.RENEWAL)


def test_a_forged_or_damaged_token_changes_nothing(user, client):
    token = unsubscribe_token(user, Topic.EXPIRY)
    for bad in (token[:-2] + "xx", "not-a-token"):
        answer = client.post(reverse("users:unsubscribe", args=[bad]))
        assert answer.status_code == 400
        assert "This link does not work" in answer.content.decode()
    assert wants_email(user, Topic.EXPIRY)


def test_a_closed_accounts_link_does_nothing(user, client):
    url = unsubscribe_url(user, Topic.EXPIRY)
    user.is_active = False
    user.save()
    assert client.post(link_path(url)).status_code == 400
    assert not Profile.objects.filter(user=user, email_expiry=False).exists()


def test_the_profile_switches_emails_off_and_on(user, client):
    client.force_login(user)
    page = client.get(reverse("users:profile")).content.decode()
    assert "Low balance warnings" in page
    answer = client.post(reverse("users:email_preferences"), {"email_expiry": "on"})
    assert answer.status_code == 302
    assert [wants_email(user, topic) for topic in Topic] == [False, True, False]

    answer = client.post(
        reverse("users:email_preferences"), {"email_low_balance": "on"}, HTTP_HX_REQUEST="true"
    )
    assert "Your email preferences were saved." in answer.content.decode()
    assert "<html" not in answer.content.decode()  # the panel alone, for htmx to swap
    assert [wants_email(user, topic) for topic in Topic] == [True, False, False]


def test_only_these_three_emails_can_be_switched_off():
    """Receipts, refunds, failed payments and security emails have no switch."""
    assert {topic.value for topic in Topic} == {"low_balance", "expiry", "renewal"}
