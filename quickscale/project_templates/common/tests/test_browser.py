"""The browser suite's CSP checker catches what the site's policy blocks (a real Chromium)."""

from typing import Any

import pytest
from django.conf import settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INLINE_CODE = (
    "<!doctype html><title>probe</title>"
    "<script>document.title = 'ran'</script>"
    '<p style="color: red">styled</p>'
    "<button onclick=\"document.title = 'clicked'\">go</button>"
)


def test_inline_script_style_and_handlers_are_reported_as_csp_violations(page: Any) -> None:
    def serve_with_the_sites_policy(route: Any) -> None:
        route.fulfill(
            status=200,
            content_type="text/html",
            headers={"Content-Security-Policy": settings.CONTENT_SECURITY_POLICY},
            body=INLINE_CODE,
        )

    page.route("**/csp-probe/", serve_with_the_sites_policy)
    page.goto("/csp-probe/")
    page.get_by_role("button", name="go").click()

    assert page.title() == "probe"  # the inline script and the handler never ran
    violations = " ".join(page.console.csp_violations)
    for directive in ("script-src", "style-src"):
        assert directive in violations, page.console.csp_violations
    with pytest.raises(AssertionError, match="CSP violations"):
        page.console.assert_clean()
    page.console.csp_violations.clear()  # seen on purpose: the page may close cleanly
