"""Each service page, its result and the usage page in Chromium at 1280 and 390 px.

No page is wider than its viewport (the code snippets and raw JSON scroll inside
their boxes), the copy buttons put the snippet on the clipboard, and the console
stays clean (no CSP violation: the copy button is an Alpine component of app.js).
"""

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from common.testing.browser import log_in
from credits import ledger
from services.configuration import ensure_service_rows
from services.tests.factories import png_bytes
from services.tests.test_browser import _worker
from users.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)
TEXT = "What a wonderful, delightful day. The rain stopped. Everyone went outside to play."


def fits(page: Any, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width} px wide at {width} px"


def run(page: Any, name: str, tmp_path: Any) -> None:
    page.goto(f"/services/{name}/")
    if name == "image_metadata_extractor":
        image = tmp_path / "dot.png"
        image.write_bytes(png_bytes(40, 30))
        page.get_by_label("Image").set_input_files(str(image))
    else:
        page.get_by_label("Text").fill(TEXT)
    page.locator("#service-panel button[type=submit]").click()
    expect(page.locator("#service-result-box")).to_be_visible()


@pytest.mark.parametrize("width", WIDTHS)
def test_each_service_result_renders_as_ui_and_fits_the_viewport(page: Any, width: int, tmp_path):
    ensure_service_rows()
    user = make_user("ui@example.com")
    ledger.grant(user, 100, source="admin", reference="browser-ui")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, "ui@example.com", PASSWORD)

    run(page, "text_sentiment_analysis", tmp_path)
    expect(page.locator("#sentiment-label")).to_have_text("Positive")
    expect(page.locator("#raw-result pre")).to_be_hidden()
    page.locator("#raw-result summary").click()
    expect(page.locator("#raw-result pre")).to_contain_text('"label": "positive"')
    fits(page, width)

    run(page, "text_summarizer", tmp_path)
    expect(page.locator("#result-summary")).to_contain_text("of 3 sentences")
    fits(page, width)

    run(page, "image_metadata_extractor", tmp_path)
    expect(page.locator("#result-image")).to_contain_text("40 × 30 px")  # noqa: RUF001
    fits(page, width)

    run(page, "demo_free_service", tmp_path)
    expect(page.locator("#result-fields")).to_contain_text("Words")
    fits(page, width)

    for name in ("structured_extraction", "batch_sentiment_analysis"):
        page.goto(f"/services/{name}/")
        expect(page.locator("#code-panel")).to_be_visible()
        fits(page, width)

    page.goto("/services/")
    expect(page.get_by_role("link", name="Sentiment analysis", exact=True)).to_be_visible()
    fits(page, width)
    page.goto("/services/usage/")
    usage = page.locator("#usage-table" if width > 768 else "#usage-cards")
    expect(usage).to_contain_text("text: What a wonderful")
    fits(page, width)
    page.console.assert_clean()


def test_the_copy_button_puts_the_snippet_on_the_clipboard(page: Any):
    ensure_service_rows()
    make_user("copier@example.com")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "copier@example.com", PASSWORD)
    page.goto("/services/text_summarizer/")
    page.locator("#copy-curl").click()
    expect(page.locator("#copy-curl")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("curl -X POST ")
    assert "/api/services/text_summarizer/run" in copied
    assert copied == page.locator("#snippet-curl").text_content()
    expect(page.locator("#copy-curl")).to_have_text("Copy", timeout=5000)
    page.console.assert_clean()


def test_running_out_of_credits_offers_to_buy_them(page: Any):
    ensure_service_rows()
    make_user("broke@example.com")
    log_in(page, "broke@example.com", PASSWORD)
    page.goto("/services/text_sentiment_analysis/")
    page.get_by_label("Text").fill("Hello")
    page.locator("#service-panel button[type=submit]").click()
    page.get_by_role("link", name="Buy credits").click()
    expect(page).to_have_url(re.compile(r"/pricing/$"))


def test_a_batch_jobs_result_fits_a_phone(page: Any):
    ensure_service_rows()
    user = make_user("job@example.com")
    ledger.grant(user, 10, source="admin", reference="browser-job")
    page.set_viewport_size({"width": 390, "height": 900})
    log_in(page, "job@example.com", PASSWORD)
    page.goto("/services/batch_sentiment_analysis/")
    page.get_by_label("Texts").fill("I adore this.\nThis is dreadful.\nIt is a table.")
    page.get_by_role("button", name="Start job").click()
    expect(page.locator("#job-state")).to_contain_text("Queued")
    _worker().join(timeout=30)
    expect(page.locator("#batch-counts")).to_have_text("Positive 1 Neutral 1 Negative 1")
    expect(page.locator("#batch-rows tbody tr")).to_have_count(3)
    fits(page, 390)
    page.goto("/services/jobs/")
    fits(page, 390)
    page.console.assert_clean()
