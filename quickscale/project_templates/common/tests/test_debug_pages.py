"""Django's technical 404 and 500 pages are readable under the CSP while DEBUG is on.

They style themselves inline and toggle traceback frames with inline handlers; the
CSP middleware allows those on these responses only, and only with DEBUG on.
"""

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

pytestmark = pytest.mark.django_db

INLINE_STYLES = "style-src 'self' 'unsafe-inline'"
INLINE_SCRIPTS = "script-src 'self' 'unsafe-inline'"


@pytest.fixture
def debug(settings: Any) -> Any:
    settings.DEBUG = True
    settings.ROOT_URLCONF = "core.tests.debug_urls"
    return settings


def test_the_technical_404_allows_its_inline_styles(client, debug):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Using the URLconf defined in" in response.content.decode()  # Django's page
    policy = response["Content-Security-Policy"]
    assert INLINE_STYLES in policy
    assert INLINE_SCRIPTS in policy
    # The rest of the policy is the project's.
    assert policy.replace(" 'unsafe-inline'", "") == django_settings.CONTENT_SECURITY_POLICY


def test_the_technical_500_allows_its_inline_styles_and_scripts(debug):
    response = Client(raise_request_exception=False).get("/broken/")

    assert response.status_code == 500
    assert "a bug to read the traceback of" in response.content.decode()
    assert INLINE_STYLES in response["Content-Security-Policy"]
    assert INLINE_SCRIPTS in response["Content-Security-Policy"]


def test_other_pages_keep_the_strict_policy_with_debug_on(client, debug):
    response = client.get("/about/")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == django_settings.CONTENT_SECURITY_POLICY


def test_without_debug_the_404_and_500_are_ours_and_strict(settings):
    settings.ROOT_URLCONF = "core.tests.debug_urls"
    client = Client(raise_request_exception=False)
    for path, status in (("/no-such-page/", 404), ("/broken/", 500)):
        response = client.get(path)
        assert response.status_code == status
        assert "unsafe-inline" not in response["Content-Security-Policy"]
        assert "Traceback" not in response.content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_technical_pages_render_styled_and_work_in_a_browser(page, debug):
    """No CSP violation (the page fixture fails on any), the styles apply, the toggle runs."""
    response = page.goto("/no-such-page/")
    assert response.status == 404
    summary = page.locator("#summary")
    assert summary.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 204)"

    response = page.goto("/broken/")
    assert response.status == 500
    assert summary.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 204)"
    assert page.locator("#pastebinTraceback").is_hidden()
    page.get_by_role("button", name="Switch to copy-and-paste view").click()
    assert page.locator("#pastebinTraceback").is_visible()
    assert page.locator("#browserTraceback").is_hidden()
