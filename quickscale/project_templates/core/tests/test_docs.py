"""The docs hold: every command they show runs and succeeds, and every link leads somewhere.

Each page's commands (``common/testing/doc_commands.py`` says which lines are
commands) run in order, through bash, in a fresh copy of the project: a
command may change files, and the copy is deleted afterwards. They run with
this test run's tools first on PATH and with ``DATABASE_URL`` naming this
session's test database, so a ``pytest`` among them makes its own test
database on the same server, and ``manage.py`` commands read a migrated one.
``quickscale`` commands are not run here: the project does not depend on the
tool that generated it, and QuickScale's own test suite runs them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.db import connection

from common.testing.doc_commands import Command, doc_pages, shell_commands

ROOT = Path(__file__).resolve().parents[2]
# Generous: on a busy 2-core machine a browser test run alone takes most of a minute.
COMMAND_TIMEOUT_SECONDS = 300
# Left out of the copy: state, installed packages and caches, none of them the project's code.
NOT_COPIED_AT_THE_ROOT = frozenset(
    {".git", ".venv", ".quickscale", "node_modules", "staticfiles", "test-artifacts"}
)
NOT_COPIED_ANYWHERE = frozenset(
    {
        "__pycache__",
        ".hypothesis",
        ".import_linter_cache",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
# Set for the commands this test runs: a `pytest` among them that reached this
# test again would copy and run the docs again, without end.
NESTED = "RUNNING_THE_DOCS_COMMANDS"


def _project_commands(page: Path) -> list[Command]:
    return [command for command in shell_commands(page) if not command.runs_the_tool]


PAGES_WITH_COMMANDS = [page for page in doc_pages(ROOT) if _project_commands(page)]


def _not_copied(directory: str, names: list[str]) -> set[str]:
    skipped = NOT_COPIED_ANYWHERE
    if Path(directory) == ROOT:
        skipped = skipped | NOT_COPIED_AT_THE_ROOT
    return {name for name in names if name in skipped}


def _database_url(database: dict[str, Any]) -> str:
    """A URL for the database Django uses now (the test database, during a test)."""
    user = quote(str(database.get("USER") or ""), safe="")
    password = quote(str(database.get("PASSWORD") or ""), safe="")
    host = quote(str(database.get("HOST") or ""), safe="")  # a socket folder is %2F-quoted
    port = f":{database['PORT']}" if database.get("PORT") else ""
    name = quote(str(database["NAME"]), safe="")
    options = {
        key: value
        for key, value in (database.get("OPTIONS") or {}).items()
        if isinstance(value, str | int)  # sslmode and friends, not the pool settings
    }
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{user}:{password}@{host}{port}/{name}{query}"


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env[NESTED] = "1"
    # The tools installed beside the Python running this test: the project's venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["DATABASE_URL"] = _database_url(connection.settings_dict)
    # mypy starts from the project's own cache (a file whose content is unchanged
    # is not checked again, wherever it lives), which a cold run would take a minute to build.
    env["MYPY_CACHE_DIR"] = str(ROOT / ".mypy_cache")
    return env


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=lambda page: page.name)
def test_every_command_of_the_page_runs_and_succeeds(page: Path, django_db_setup: None) -> None:
    assert NESTED not in os.environ, (
        "A command of the docs runs this test: show runs of the whole suite in prose."
    )
    env = _environment()
    with tempfile.TemporaryDirectory(prefix="qs-docs-") as holder:
        copy = Path(holder) / ROOT.name
        shutil.copytree(ROOT, copy, symlinks=True, ignore=_not_copied)
        for command in _project_commands(page):
            result = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command.text],
                cwd=copy,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_SECONDS,
                check=False,
            )
            assert result.returncode == 0, (
                f"{command.where(ROOT)}: `{command.text}` exited with {result.returncode}\n"
                f"{_tail(result.stdout)}\n{_tail(result.stderr)}"
            )


def test_the_readme_links_every_page_of_the_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {match["target"] for match in _LINK.finditer(readme)}
    pages = {f"docs/{page.name}" for page in doc_pages(ROOT)[1:]}
    assert pages, "docs/ has no pages"
    assert pages - linked == set()


def test_every_relative_link_of_the_docs_leads_to_a_file() -> None:
    broken = []
    for page in doc_pages(ROOT):
        for match in _LINK.finditer(page.read_text(encoding="utf-8")):
            target = match["target"].split("#", 1)[0]
            if target and "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {match['target']}")
    assert broken == []
