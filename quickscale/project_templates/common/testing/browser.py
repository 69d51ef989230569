"""Browser-test fixtures (Playwright + Chromium), a pytest plugin shared by every app.

The root conftest loads it (``pytest_plugins``). Tests marked ``browser`` take the
``page`` fixture: a fresh Chromium page at desktop size whose console is watched
for Content-Security-Policy violations. When a test fails, a screenshot and the
page's HTML are saved under ``test-artifacts/`` and their paths printed.

Chromium: Debian's ``/usr/bin/chromium`` when present (``apt install chromium``), else
Playwright's own (``python -m playwright install chromium``).
"""

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; Django then refuses ORM
# calls from it unless told the test thread may make them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 800}


def chromium_path() -> str | None:
    """Debian's Chromium when installed, else None (Playwright's own browser)."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium through Playwright")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class ConsoleWatch:
    """Console errors and CSP violations seen by one page: the suite's one CSP checker.

    Every ``page`` fails its test on a CSP violation when it closes; a test that
    also wants no console error at all calls ``page.console.assert_clean()``.
    """

    def __init__(self) -> None:
        self.csp_violations: list[str] = []
        self.errors: list[str] = []

    def on_console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.csp_violations.append(text)
        elif message.type == "error":
            self.errors.append(text)

    def assert_clean(self, *, errors: bool = True) -> None:
        """Fail on any CSP violation, and on any other console error unless ``errors=False``."""
        assert self.csp_violations == [], f"CSP violations: {self.csp_violations}"
        if errors:
            assert self.errors == [], f"console errors: {self.errors}"


# A scheme switch starts CSS colour transitions; whatever reads colours (axe, a
# screenshot) must wait for the colours they end on. Transitions only: an animation
# may run for ever (a spinner), so it is not awaited.
_TRANSITIONS_DONE = """() => Promise.all(
  document.getAnimations().filter((a) => a instanceof CSSTransition).map((a) => a.finished)
)"""


def switch_scheme(page: Any, scheme: str) -> None:
    """Emulate the ``light`` or ``dark`` system setting and wait until the page has settled."""
    page.emulate_media(color_scheme=scheme)
    page.evaluate(_TRANSITIONS_DONE)


def log_in(page: Any, email: str, password: str) -> None:
    """Sign in through the login form, as a person would."""
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-150:]


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, live_server: Any) -> Iterator[Any]:
    """A desktop-sized page; ``page.console`` holds what its console reported."""
    from django.core.cache import cache

    # The database cache table is no model, so transactional tests do not empty
    # it: start each journey without what an earlier one cached.
    cache.clear()
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    # Generous: on a 2-core CI machine the live server shares the cores with Chromium.
    context.set_default_timeout(20_000)
    new_page = context.new_page()
    watch = ConsoleWatch()
    new_page.on("console", watch.on_console)
    new_page.console = watch
    yield new_page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        stem = ARTIFACTS / _artifact_name(request.node.nodeid)
        try:
            new_page.screenshot(path=f"{stem}.png", full_page=True)
            Path(f"{stem}.html").write_text(new_page.content(), encoding="utf-8")
            print(f"\nbrowser artifacts: {stem}.png {stem}.html")  # noqa: T201
        except Exception as error:  # the page may be gone; the test failure matters more
            print(f"\nbrowser artifacts could not be saved: {error}")  # noqa: T201
    context.close()
    watch.assert_clean(errors=False)
