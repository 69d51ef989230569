"""The contact form fills in a signed-in user's name and email."""

from typing import Any

import pytest
from playwright.sync_api import expect

from common.testing.browser import log_in
from common.testing.html import elements
from public.models import ContactMessage
from users.models import Profile
from users.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def field_values(client: Any) -> tuple[str | None, str | None]:
    page = elements(client.get("/contact/").content.decode())
    return page["id_name"].get("value"), page["id_email"].get("value")


def test_signed_out_the_fields_are_empty(client):
    assert field_values(client) == (None, None)


def test_the_profile_name_and_the_account_email_are_filled_in(client):
    user = make_user("ada@example.com", first_name="Augusta", last_name="King")
    Profile.objects.create(user=user, full_name="Ada Lovelace")
    client.force_login(user)

    assert field_values(client) == ("Ada Lovelace", "ada@example.com")


def test_without_a_profile_name_the_account_name_is_used_and_no_profile_is_made(client):
    user = make_user("grace@example.com", first_name="Grace", last_name="Hopper")
    client.force_login(user)

    assert field_values(client) == ("Grace Hopper", "grace@example.com")
    assert not Profile.objects.filter(user=user).exists()


def test_with_no_name_at_all_only_the_email_is_filled_in(client):
    client.force_login(make_user("anon@example.com"))

    assert field_values(client) == (None, "anon@example.com")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_signed_in_user_sends_a_message_typing_only_subject_and_text(page, staff):
    user = make_user("linus@example.com")
    Profile.objects.create(user=user, full_name="Linus T")
    log_in(page, "linus@example.com", PASSWORD)
    page.goto("/contact/")

    expect(page.get_by_label("Your name")).to_have_value("Linus T")
    expect(page.get_by_label("Your email")).to_have_value("linus@example.com")
    page.get_by_label("Subject").fill("Invoices")
    page.get_by_label("Message").fill("Where do I find my invoices?")
    page.get_by_role("button", name="Send message").click()
    page.get_by_text("your message was sent").wait_for()

    sent = ContactMessage.objects.get()
    assert (sent.name, sent.email) == ("Linus T", "linus@example.com")
    # The emptied form is still filled in for a next message.
    expect(page.get_by_label("Your email")).to_have_value("linus@example.com")
