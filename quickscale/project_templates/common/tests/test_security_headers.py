import pytest
from django.test import RequestFactory, override_settings

from common.client_ip import client_ip

pytestmark = pytest.mark.django_db


def test_every_page_sends_the_content_security_policy(client):
    policy = client.get("/")["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "img-src 'self' data:" in policy


def test_pages_deny_framing_and_set_a_referrer_policy(client):
    response = client.get("/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_htmx_sends_the_csrf_token_from_every_page(client):
    html = client.get("/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


@pytest.mark.parametrize(
    ("count", "forwarded", "remote", "expected"),
    [
        (0, "1.1.1.1", "10.0.0.1", "10.0.0.1"),
        (1, "1.1.1.1", "10.0.0.1", "1.1.1.1"),
        (1, "6.6.6.6, 1.1.1.1", "10.0.0.1", "1.1.1.1"),  # leftmost entry is client-forged
        (2, "6.6.6.6, 1.1.1.1, 10.9.9.9", "10.0.0.1", "1.1.1.1"),
        (2, "1.1.1.1", "10.0.0.1", "10.0.0.1"),  # fewer hops than proxies: not trusted
        (1, "garbage", "10.0.0.1", None),
        (0, "", "[::1]", "::1"),
    ],
)
def test_client_ip_honours_the_trusted_proxy_count(count, forwarded, remote, expected):
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=remote)
    with override_settings(TRUSTED_PROXY_COUNT=count):
        assert client_ip(request) == expected
