"""The axe-core check itself (common/testing/axe.py): what it fails on and what it lets pass."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.staticfiles import finders

from common.testing.axe import AXE_FILE, assert_accessible, failing, run_axe

PAGE = """<!doctype html><html lang="en"><head><title>Probe</title><style>
  body {{ background: #fff; color: #222; }}
  .faint {{ color: #bbb; }}
  @media (prefers-color-scheme: dark) {{
    body {{ background: #111; color: #eee; }}
    .dim {{ color: #333; }}
  }}
</style></head><body><main><h1>Probe</h1>{body}</main></body></html>"""


@pytest.fixture
def blank(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def rules(page: Any) -> set[str]:
    return {violation.rule for violation in failing(run_axe(page))}


@pytest.mark.browser
def test_a_labelled_readable_page_passes(blank):
    blank.set_content(
        PAGE.format(body='<label for="q">Search</label><input id="q"><p>Readable text.</p>')
    )
    assert_accessible(blank)


@pytest.mark.browser
def test_unlabelled_fields_fail(blank):
    blank.set_content(PAGE.format(body='<input id="q"><select><option>One</option></select>'))
    assert rules(blank) >= {"label", "select-name"}
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(blank)


@pytest.mark.browser
def test_low_contrast_text_fails(blank):
    blank.set_content(PAGE.format(body='<p class="faint">Hard to read on white.</p>'))
    assert rules(blank) == {"color-contrast"}


@pytest.mark.browser
def test_the_dark_scheme_is_checked_after_switching_without_a_reload(blank):
    blank.set_content(PAGE.format(body='<p class="dim">Fine on white, lost on black.</p>'))
    assert rules(blank) == set()
    blank.emulate_media(color_scheme="dark")
    assert rules(blank) == {"color-contrast"}


def test_axe_is_for_the_tests_only_and_never_served_as_a_static_file():
    assert AXE_FILE.is_file()
    assert finders.find("axe.min.js") is None
    assert finders.find("vendor/axe.min.js") is None
    served = [path for finder in finders.get_finders() for path, _ in finder.list([])]
    assert not [path for path in served if "axe" in path.rsplit("/", 1)[-1]], served
