"""axe-core on every page, for each role, in the light and the dark colour scheme (Chromium).

The pages are core/testing/pages.py's inventory. Each is loaded once per role and
checked by axe (common/testing/axe.py) in light, then again after switching the
emulated scheme to dark (no reload). No page may have a serious or critical
violation, nor a form field without a label. One test per role reports every
failing page at once.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from common.testing.axe import assert_accessible, run_axe
from common.testing.browser import switch_scheme
from core.testing.pages import (
    PageSpec,
    Role,
    pages_for,
    prepare_site,
    signed_in_page,
    site_settings,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCHEMES = ("light", "dark")
# Pages the inventory leaves out that a person still sees: allauth's dead ends and
# Django's admin index (its model pages need permissions the inventory's staff
# lacks). Pages inside a flow, such as the two-factor code step and the recovery
# codes, are checked by the journey: home/tests/test_journey_browser.py.
MORE_PAGES: dict[Role, list[PageSpec]] = {
    "anonymous": [
        PageSpec("verification-sent", "/accounts/confirm-email/", ("anonymous",)),
        PageSpec("bad-reset-key", "/accounts/password/reset/key/1-bad/", ("anonymous",)),
        PageSpec("inactive", "/accounts/inactive/", ("anonymous",)),
    ],
    "user": [],
    "staff": [
        PageSpec("django-admin", "/admin/", ("staff",), ready="#content"),
    ],
}


@pytest.mark.parametrize("role", ["anonymous", "user", "staff"])
def test_every_page_has_no_serious_axe_violation_and_labels_every_field(
    role: Role, browser: Any, live_server: Any, settings: Any
) -> None:
    site_settings(settings)
    site = prepare_site()
    failures: list[str] = []
    with signed_in_page(browser, live_server.url, role, site) as page:
        for spec in pages_for(role) + MORE_PAGES[role]:
            page.emulate_media(color_scheme=SCHEMES[0])
            page.goto(spec.url(site))
            try:
                page.locator(spec.ready).first.wait_for(state="attached")
            except PlaywrightTimeout:
                failures.append(f"{spec.name} as {role}: no {spec.ready!r} at {page.url}")
                continue
            for scheme in SCHEMES:
                switch_scheme(page, scheme)
                try:
                    assert_accessible(page, f"{spec.name} as {role} ({scheme}), {spec.url(site)}")
                except AssertionError as failure:
                    failures.append(str(failure))
        page.console.assert_clean(errors=False)
    assert not failures, "\n\n".join(failures)


# Tables whose last column holds only buttons: its header is named for screen readers.
ACTION_COLUMN_PAGES: dict[Role, list[str]] = {
    "user": ["/api-keys/"],
    "staff": ["/dashboard/services/"],
}


@pytest.mark.parametrize("role", ["user", "staff"])
def test_action_columns_have_a_header_screen_readers_read(
    role: Role, browser: Any, live_server: Any, settings: Any
) -> None:
    site_settings(settings)
    site = prepare_site()
    with signed_in_page(browser, live_server.url, role, site) as page:
        for url in ACTION_COLUMN_PAGES[role]:
            page.goto(url)
            page.locator("table").first.wait_for(state="attached")
            found = [v for v in run_axe(page) if v.rule == "empty-table-header"]
            assert not found, f"{url}: " + "; ".join(str(v) for v in found)
            header = page.get_by_role("columnheader", name="Actions", exact=True)
            assert header.count() == 1, url
