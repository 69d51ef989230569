"""The contact form in a real Chromium (fixtures: common/testing/browser.py)."""

import pytest

from public.models import ContactMessage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_contact_form_sends_without_a_page_load(page):
    page.goto("/contact/")
    page.get_by_label("Your name").fill("Eve")
    page.get_by_label("Your email").fill("eve@example.com")
    page.get_by_label("Subject").fill("Hello")
    page.get_by_label("Message").fill("A question about credits.")
    page.get_by_role("button", name="Send message").click()
    page.get_by_text("your message was sent").wait_for()
    assert ContactMessage.objects.filter(email="eve@example.com").exists()
    assert page.url.endswith("/contact/")
