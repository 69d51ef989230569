import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_an_unknown_page_gets_the_styled_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and "css/app.css" in html


def test_a_post_without_csrf_token_is_refused_with_the_styled_page(db):
    client = Client(enforce_csrf_checks=True)
    get_user_model().objects.create_user(email="dana@example.com", password="Pass-word-123")
    for url, data in [
        (reverse("account_login"), {"login": "dana@example.com", "password": "x"}),
        (reverse("public:contact"), {"name": "a"}),
        (reverse("account_signup"), {"email": "a@example.com"}),
    ]:
        response = client.post(url, data)
        assert response.status_code == 403
        assert "This form expired" in response.content.decode()


def test_the_500_page_renders_without_a_request_context():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong" in html


def test_403_page_is_styled(rf):
    from django.views.defaults import permission_denied

    response = permission_denied(rf.get("/"), exception=PermissionDenied())
    assert response.status_code == 403
    assert "Access denied" in response.content.decode()
