"""The gallery: every page of the project, desktop and phone, light and dark, as each role.

Pages and roles are the browser tests' inventory (core/testing/pages.py in the
template): a user with a bought pack, a plan, usage, a finished job, an API key and
a chat, and a staff account, made through the project's own paths on a scratch
database. One Chromium visits each page once per role and takes a full-page
PNG in each of four variants (1280 and 390 px wide, light and dark colour scheme):

    <out>/<role>/<page>-<width>-<scheme>.png

It prints every picture with its size, and the baseline: each page's document
width beside its viewport's (a page wider than its viewport scrolls sideways, and
is flagged), then how many pictures are too wide. Look at the pictures: the
browser suite checks the widths, not what a page looks like.

Runs against a scratch database on DATABASE_URL's server (dropped afterwards), or
on a throwaway embedded PostgreSQL when it is unset. Needs Chromium (Debian's
/usr/bin/chromium, or Playwright's own).

    .venv/bin/python bench/screenshots.py [OUT] [--role user] [--page billing] [--width 390]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import TEMPLATE, database_server, scratch_database

Role = Literal["anonymous", "user", "staff"]

WIDTHS = (1280, 390)
SCHEMES = ("light", "dark")
HEIGHT = 900
DEFAULT_OUT = Path("/tmp/qs/gallery")


def setup_project(database_url: str) -> None:
    """Django on the scratch database, migrated, in this process (the server is a thread)."""
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="core.settings",
        DJANGO_ALLOW_ASYNC_UNSAFE="true",  # Playwright's loop runs in this thread
        LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(TEMPLATE))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from core.testing.pages import site_settings

    site_settings(settings)
    # As the browser tests run and as visitors see it: the project's own error pages,
    # not Django's technical ones.
    settings.DEBUG = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.RATE_LIMIT_BACKEND = "database"
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


def start_server() -> Any:
    """Django's live-server thread (static files from the finders), as the browser tests use."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.db import connections
    from django.test.testcases import LiveServerThread

    # The thread and this one share the scratch database's connection, as in the tests.
    thread = LiveServerThread("127.0.0.1", StaticFilesHandler, connections_override={}, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    connections.close_all()
    return thread


def shoot(out: Path, roles: list[Role], names: set[str], widths: tuple[int, ...]) -> list[str]:
    """Take the pictures; return the lines of the report."""
    from playwright.sync_api import sync_playwright

    from common.testing.browser import CHROMIUM_ARGS, chromium_path, switch_scheme
    from core.testing.pages import pages_for, prepare_site, signed_in_page

    site = prepare_site()
    server = start_server()
    base_url = f"http://127.0.0.1:{server.port}"
    lines = []
    too_wide = 0
    pictures = 0
    started = time.perf_counter()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        for role in roles:
            (out / role).mkdir(parents=True, exist_ok=True)
            with signed_in_page(browser, base_url, role, site) as page:
                for spec in pages_for(role):
                    if names and spec.name not in names:
                        continue
                    page.emulate_media(color_scheme="light")
                    page.set_viewport_size({"width": widths[0], "height": HEIGHT})
                    page.goto(spec.url(site))
                    page.wait_for_load_state("networkidle")
                    for scheme in SCHEMES:
                        switch_scheme(page, scheme)
                        for width in widths:
                            page.set_viewport_size({"width": width, "height": HEIGHT})
                            switch_scheme(page, scheme)  # a resize may start transitions too
                            wide = page.evaluate("document.documentElement.scrollWidth")
                            tall = page.evaluate("document.documentElement.scrollHeight")
                            path = out / role / f"{spec.name}-{width}-{scheme}.png"
                            page.screenshot(path=str(path), full_page=True)
                            pictures += 1
                            flag = "" if wide <= width else "  TOO WIDE"
                            too_wide += bool(flag)
                            lines.append(
                                f"{path.relative_to(out)!s:<48} {wide:>5} x {tall:<6} "
                                f"{path.stat().st_size // 1024:>5} KB   page {wide:>5} px "
                                f"in {width:>4}{flag}"
                            )
        browser.close()
    lines.append(
        f"{pictures} pictures in {time.perf_counter() - started:.0f} s; "
        f"{too_wide} wider than their viewport; folder {out}"
    )
    server.terminate()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help="the folder")
    parser.add_argument("--role", action="append", choices=["anonymous", "user", "staff"])
    parser.add_argument("--page", action="append", default=[], help="a page's inventory name")
    parser.add_argument("--width", action="append", type=int, help="default: 1280 and 390")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    for role in ("anonymous", "user", "staff"):  # a gallery of this run only
        for old in (out / role).glob("*.png"):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        server_url = stack.enter_context(database_server())
        database_url = stack.enter_context(scratch_database(server_url, "screenshots"))
        setup_project(database_url)
        lines = shoot(
            out,
            cast(list[Role], args.role or ["anonymous", "user", "staff"]),
            set(args.page),
            tuple(args.width or WIDTHS),
        )
    print(f"{'picture':<48} {'document px':<14} {'file':>8}   baseline")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
