import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from users.models import CustomUser, Profile, SecurityEvent
from users.selectors import profile_for
from users.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_settings_page_links_email_password_and_deletion(client, user):
    client.force_login(user)
    html = client.get(reverse("users:settings")).content.decode()
    assert reverse("account_email") in html
    assert reverse("account_change_password") in html
    assert f'href="{reverse("users:delete")}"' in html  # works without JavaScript
    assert 'x-data="modal"' in html


def test_deletion_with_a_wrong_password_changes_nothing(client, user):
    client.force_login(user)
    response = client.post(reverse("users:delete"), {"password": "not-it"})
    assert response.status_code == 200
    assert "not your password" in response.content.decode()
    user.refresh_from_db()
    assert user.is_active and user.email == "dana@example.com"


def test_deletion_deactivates_erases_and_ends_every_session(client, user):
    profile = profile_for(user)
    profile.full_name, profile.bio = "Dana Scully", "FBI"
    profile.save()
    other_device = Client()
    other_device.force_login(user)
    client.force_login(user)

    response = client.post(reverse("users:delete"), {"password": PASSWORD})

    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_active
    assert user.email == f"deleted-{user.pk}@deleted.invalid"
    assert not user.has_usable_password()
    assert Profile.objects.get(user=user).full_name == ""
    assert not EmailAddress.objects.filter(user=user).exists()
    assert SESSION_KEY not in client.session
    assert not other_device.get("/").context["user"].is_authenticated
    assert SecurityEvent.objects.filter(kind="account_deleted", user=user).exists()
    assert CustomUser.objects.filter(pk=user.pk).exists()  # the row stays for PROTECT FKs


def test_the_deleted_email_can_sign_up_again(client, user):
    client.force_login(user)
    client.post(reverse("users:delete"), {"password": PASSWORD})
    response = client.post(
        reverse("account_signup"),
        {"email": "dana@example.com", "password1": "Brand-new-42", "password2": "Brand-new-42"},
    )
    assert response.status_code == 302


def test_email_management_and_password_pages_render_in_the_site_layout(client, user):
    client.force_login(user)
    for name in ("account_email", "account_change_password"):
        html = client.get(reverse(name)).content.decode()
        assert "css/app.css" in html and "navbar" in html


def test_changing_the_password_is_logged(client, user):
    client.force_login(user)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "Changed-pass-42", "password2": "Changed-pass-42"},
    )
    assert response.status_code == 302
    assert SecurityEvent.objects.filter(kind="password_changed", user=user).exists()
