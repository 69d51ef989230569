"""Every page fits its viewport, desktop and phone, light and dark, for each role (Chromium).

The pages are core/testing/pages.py's inventory. Each is loaded once per role and
measured in four variants (1280 and 390 px wide, light and dark): resizing the
viewport and emulating the colour scheme re-lay the page out without a reload.

A variant fails when the document scrolls sideways (the failure names the elements
where the overflow starts), or when a table or a row of tabs scrolls sideways in
its box, hiding the columns or tabs past its edge. A page fails when a select is
not a Bulma select (wrapped in ``div.select``): the native control looks out of
place. A screenshot is saved only for a failing variant, under test-artifacts/.
The console is watched for CSP violations throughout, as by the ``page`` fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.testing.browser import ARTIFACTS
from core.testing.pages import Role, Site, pages_for, prepare_site, signed_in_page, site_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)
HEIGHT = 900
SCHEMES = ("light", "dark")

# Where the overflow starts: elements past the right edge whose parent is not (a
# table, a long word, a fixed width), unless a box that scrolls or clips sideways
# holds them; then the widest of their descendants, to name what pushes.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const past = (element) => element.getBoundingClientRect().right > width + 1;
  const clipped = (element) => {
    for (let p = element.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible" && !past(p)) return true;
    }
    return false;
  };
  const name = (element) => element.tagName.toLowerCase() + (element.id ? "#" + element.id : "") +
    [...element.classList].map((c) => "." + c).join("");
  const origins = [...document.body.querySelectorAll("*")].filter(
    (element) => past(element) && element.getBoundingClientRect().width > 0 &&
      !(element.parentElement && past(element.parentElement)) && !clipped(element)
  );
  // A table that scrolls inside its box hides the columns past its edge, as tabs do.
  const scrolled = [...document.querySelectorAll(".table-container, .tabs")].filter(
    (box) => box.offsetParent !== null && box.scrollWidth > box.clientWidth + 1
  );
  return {
    scrollWidth: document.documentElement.scrollWidth,
    width,
    culprits: origins.slice(0, 5).map(
      (element) =>
        `${name(element)} (right edge ${Math.round(element.getBoundingClientRect().right)})`
    ),
    scrolled: scrolled.map(
      (box) =>
        `${name(box.querySelector("table") || box)} (${box.scrollWidth} px in ${box.clientWidth})`
    ),
  };
}"""
# Bulma draws a select through its wrapper: a bare one is the browser's native control.
BARE_SELECTS = """() => [...document.querySelectorAll("select")]
  .filter((select) => !select.parentElement.classList.contains("select"))
  .map((select) => select.name || select.id)"""


def _measure(page: Any, spec_name: str, role: Role) -> list[str]:
    """Every variant of the loaded page that is wider than its viewport, described."""
    problems = []
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": HEIGHT})
            found = page.evaluate(OVERFLOW)
            wide = found["scrollWidth"] > found["width"]
            if not wide and not found["scrolled"]:
                continue
            ARTIFACTS.mkdir(exist_ok=True)
            shot = Path(ARTIFACTS) / f"sweep-{role}-{spec_name}-{width}-{scheme}.png"
            page.screenshot(path=str(shot), full_page=True)
            where = f"{spec_name} as {role} at {width} px ({scheme})"
            if wide:
                problems.append(
                    f"{where}: {found['scrollWidth']} px wide; past the edge: "
                    f"{', '.join(found['culprits'])}; screenshot {shot}"
                )
            if found["scrolled"]:
                problems.append(
                    f"{where}: scrolls sideways in its box, hiding what is past the edge: "
                    f"{', '.join(found['scrolled'])}; screenshot {shot}"
                )
    bare = page.evaluate(BARE_SELECTS)
    if bare:
        problems.append(f"{spec_name} as {role}: selects without Bulma's wrapper: {bare}")
    return problems


@pytest.mark.parametrize("role", ["anonymous", "user", "staff"])
def test_every_page_fits_the_viewport_at_1280_and_390_in_light_and_dark(
    role: Role, browser: Any, live_server: Any, settings: Any
) -> None:
    site_settings(settings)
    site: Site = prepare_site()
    problems: list[str] = []
    with signed_in_page(browser, live_server.url, role, site) as page:
        for spec in pages_for(role):
            page.emulate_media(color_scheme="light")
            page.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})
            page.goto(spec.url(site))
            page.locator(spec.ready).first.wait_for(state="attached")
            # A page that sent us elsewhere (sign-in, confirm it is you) is not the page.
            assert page.url.split("?")[0].endswith(spec.url(site).split("?")[0]), (
                spec.name,
                page.url,
            )
            page.wait_for_load_state("networkidle")
            problems += _measure(page, spec.name, role)
        page.console.assert_clean(errors=False)
    assert problems == [], "\n".join(problems)
