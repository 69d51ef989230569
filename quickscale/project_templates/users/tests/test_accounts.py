import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from users.tests.factories import PASSWORD


@pytest.mark.parametrize("name", ["account_login", "account_signup"])
@pytest.mark.django_db
def test_account_pages_render(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert b"vendor/bulma/bulma.min.css" in response.content


def test_signing_in_with_email_works(client, user):
    response = client.post(
        reverse("account_login"), {"login": "dana@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == "/home/"
    assert client.get("/").context["user"] == user


def test_signing_in_with_a_wrong_password_fails(client, user):
    response = client.post(reverse("account_login"), {"login": user.email, "password": "nope"})
    assert response.status_code == 200
    assert not response.context["user"].is_authenticated


def test_logout_page_renders_and_signs_out(client, user):
    client.force_login(user)
    assert client.get(reverse("account_logout")).status_code == 200
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert not client.get("/").context["user"].is_authenticated


@pytest.mark.django_db
def test_signup_creates_an_account_identified_by_email(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    response = client.post(
        reverse("account_signup"),
        {"email": "eve@example.com", "password1": "Long-pass-123", "password2": "Long-pass-123"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(email="eve@example.com").exists()


@pytest.mark.django_db
def test_signup_can_be_closed_from_the_environment(client, settings):
    settings.ACCOUNT_SIGNUP_OPEN = False
    response = client.get(reverse("account_signup"))
    assert b"closed" in response.content.lower()


@pytest.mark.django_db
def test_other_allauth_pages_render_inside_the_site_layout(client):
    response = client.get(reverse("account_reset_password"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "vendor/bulma/bulma.min.css" in html
    assert 'class="input"' in html
