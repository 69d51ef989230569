"""A project's whole life through the `quickscale` command: build, up, use, down, destroy."""

from __future__ import annotations

import http.cookiejar
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from fixtures_project import cleanup_project, free_port, seed_venv, set_env_value

from quickscale.runtime.embedded_db import EmbeddedDatabase

pytestmark = pytest.mark.integration

LOGIN_REQUIRED_PAGE = "/accounts/password/change/"
# Enqueued through the project's own task API, as its code would: the worker that
# `quickscale up` started must run it.
RUN_A_TASK = """
import time
from credits.tasks import expire_credits
result = expire_credits.enqueue()
deadline = time.monotonic() + 60
while result.status not in ("SUCCESSFUL", "FAILED") and time.monotonic() < deadline:
    time.sleep(0.2)
    result.refresh()
print("task", result.id, result.status)
"""


def quickscale(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("quickscale")
    command = str(executable) if executable.exists() else shutil.which("quickscale")
    assert command, "the quickscale command is not installed"
    return subprocess.run(
        [command, *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def ps_states(root: Path) -> dict[str, str]:
    """Service -> state, from `quickscale ps`'s table."""
    rows = [line.split("│") for line in ok(quickscale("ps", cwd=root)).splitlines() if "│" in line]
    return {cells[1].strip(): cells[2].strip() for cells in rows if len(cells) > 3}


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Browser:
    """Just enough of a browser: cookies, no proxies, redirects reported rather than followed."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self.cookies),
            NoRedirects(),
        )

    def request(
        self, path: str, data: dict[str, str] | None = None
    ) -> tuple[int, str, dict[str, str]]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body)
        if body is not None:
            request.add_header("Referer", self.base + path)
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)
        except urllib.error.URLError:
            return 0, "", {}  # nothing listens

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def sign_in(self, email: str, password: str) -> None:
        status, page, _ = self.request("/accounts/login/")
        assert status == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, "no CSRF token in the login form"
        assert self.cookie("csrftoken")
        status, _, _ = self.request(
            "/accounts/login/",
            {"login": email, "password": password, "csrfmiddlewaretoken": token.group(1)},
        )
        assert status == 302, f"sign-in answered {status}"
        assert self.cookie("sessionid")
        status, _, _ = self.request(LOGIN_REQUIRED_PAGE)
        assert status == 200


def test_build_up_use_down_up_destroy(tmp_path: Path, shared_venv: Path) -> None:
    ok(quickscale("build", "shop", "--no-start", cwd=tmp_path))
    root = tmp_path / "shop"
    try:
        seed_venv(root, shared_venv)  # the session's one environment
        port = free_port()
        set_env_value(root / ".env", "WEB_PORT", str(port))
        base = f"http://127.0.0.1:{port}"

        ok(quickscale("up", cwd=root))
        browser = Browser(base)
        status, page, _ = browser.request("/")
        assert status == 200
        assert browser.request("/health/")[0] == 200
        stylesheets = re.findall(r'<link[^>]+href="([^"]*bulma[^"]*\.css)"', page)
        assert stylesheets, "the landing page links no Bulma stylesheet"
        assert browser.request(stylesheets[0])[0] == 200
        assert browser.request(LOGIN_REQUIRED_PAGE)[0] == 302  # not signed in yet
        browser.sign_in("user@test.com", "userpasswd")

        # The worker runs beside the web server and runs what the project enqueues.
        assert ps_states(root)["worker"] == "running"
        ran = ok(quickscale("manage", "shell", "-c", RUN_A_TASK, cwd=root)).split()
        task_id = ran[ran.index("task") + 1]
        assert ran[-1] == "SUCCESSFUL", ran
        worker_log = ok(quickscale("logs", "worker", "-n", "200", cwd=root))
        assert f"Task id={task_id} path=credits.tasks.expire_credits state=SUCCESSFUL" in worker_log

        ok(quickscale("down", cwd=root))
        assert Browser(base).request("/health/")[0] != 200
        assert ps_states(root)["worker"] == "stopped"

        ok(quickscale("up", cwd=root))
        Browser(base).sign_in("user@test.com", "userpasswd")  # the data survived

        database = EmbeddedDatabase(root)
        ok(quickscale("destroy", "--yes", cwd=root))
        assert not root.exists()
        assert not database.data_dir.exists()
        assert not (database.as_root and database.base_dir.exists())
    finally:
        cleanup_project(root)
