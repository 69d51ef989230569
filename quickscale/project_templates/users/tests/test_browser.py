"""Account journeys in a real Chromium (see common/testing/browser.py for the fixtures)."""

import re

import pytest
from django.core import mail
from PIL import Image
from playwright.sync_api import expect

from common.testing.browser import PHONE, log_in
from common.testing.mail import send_queued_emails
from users.models import Profile
from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def link_in_last_mail(pattern: str) -> str:
    """The link in the newest email, once the worker's email thread (played here) has sent
    what was queued."""
    send_queued_emails()
    body = str(mail.outbox[-1].body)
    match = re.search(rf"https?://\S*{pattern}\S*", body)
    assert match, body
    return match.group(0)


def test_sign_up_verify_sign_in_edit_profile_and_sign_out(page, settings, tmp_path):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    settings.MEDIA_ROOT = tmp_path / "media"
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill("journey@example.com")
    page.locator("#id_password1").fill("abc")
    meter = page.locator(".password-meter")
    expect(meter).to_be_visible()
    expect(meter).to_contain_text("Too weak")
    page.locator("#id_password1").fill("Journey-pass-2024!")
    expect(meter).to_contain_text("Strong")
    page.locator("#id_password2").fill("Journey-pass-2024!")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Verify your email address").wait_for()

    page.goto(link_in_last_mail("/accounts/confirm-email/"))
    page.get_by_role("button", name="Confirm").click()
    log_in(page, "journey@example.com", "Journey-pass-2024!")
    page.get_by_role("link", name="journey@example.com").wait_for()

    avatar = tmp_path / "me.png"
    Image.new("RGB", (96, 96), "purple").save(avatar)
    page.goto("/accounts/profile/")
    page.get_by_label("Full name").fill("Journey Tester")
    page.get_by_label("Avatar").set_input_files(str(avatar))
    page.get_by_role("button", name="Save profile").click()
    page.get_by_text("Your profile was saved.").wait_for()  # swapped in by htmx, no reload
    image = page.locator("img.avatar-image")
    assert image.get_attribute("src").startswith("/media/avatars/")
    # The re-encoded WebP, served under its locked-down headers, is shown.
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") == 96
    assert Profile.objects.get(user__email="journey@example.com").full_name == "Journey Tester"

    page.get_by_role("link", name="journey@example.com").click()  # the user menu
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Log in").first.wait_for()


def test_five_wrong_passwords_lock_then_a_reset_lets_the_user_back_in(page):
    make_user("locked@example.com")
    for _ in range(5):
        log_in(page, "locked@example.com", "not-my-password")
    page.get_by_role("heading", name="Too many failed sign-ins").wait_for()

    page.get_by_role("link", name="Reset my password").click()
    page.get_by_label("Email").fill("locked@example.com")
    page.get_by_role("button", name="Send reset link").click()
    page.get_by_role("heading", name="Check your email").wait_for()

    page.goto(link_in_last_mail("/accounts/password/reset/key/"))
    page.locator("#id_password1").fill("Brand-new-pass-42")
    page.locator("#id_password2").fill("Brand-new-pass-42")
    page.get_by_role("button", name="Set new password").click()
    page.get_by_role("heading", name="Password changed").wait_for()

    log_in(page, "locked@example.com", "Brand-new-pass-42")
    page.get_by_role("link", name="locked@example.com").wait_for()


def test_the_burger_menu_opens_on_a_phone(page):
    page.set_viewport_size(PHONE)
    page.goto("/")
    about = page.locator("#main-menu").get_by_role("link", name="About")
    assert not about.is_visible()
    page.get_by_role("button", name="menu").click()
    about.wait_for(state="visible")
    assert page.get_by_role("button", name="menu").get_attribute("aria-expanded") == "true"
    about.click()
    page.wait_for_url("**/about/")


def test_the_delete_dialog_asks_for_the_password(page):
    make_user("leaving@example.com")
    log_in(page, "leaving@example.com", PASSWORD)
    page.goto("/accounts/settings/")
    page.get_by_role("link", name="Delete my account…").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_label("Your password").fill(PASSWORD)
    dialog.get_by_role("button", name="Delete my account").click()
    page.get_by_text("Your account was deleted").wait_for()


def test_a_refused_avatar_shows_its_error_in_place(page, tmp_path):
    """htmx swaps 2xx answers only: the refused form must come back as a 200 fragment."""
    make_user("avatar@example.com")
    log_in(page, "avatar@example.com", PASSWORD)
    page.get_by_role("link", name="avatar@example.com").wait_for()
    page.goto("/accounts/profile/")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_bytes(b"these are notes, not pixels")

    page.get_by_label("Avatar").set_input_files(str(not_an_image))
    page.get_by_role("button", name="Save profile").click()

    expect(page.locator("#profile-panel")).to_contain_text("not an image")
    assert not Profile.objects.get(user__email="avatar@example.com").avatar
