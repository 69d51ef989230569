"""Every `quickscale` command a built project's docs show runs, and succeeds, in that project.

The project's own test suite runs the other commands of its docs
(`core/tests/test_docs.py`); it cannot run these, since a project does not
depend on the tool that generated it. The commands are read with the
project's own parser (`common/testing/doc_commands.py`), so both suites agree
on what a command is. They run in the order the docs show them, through bash,
in a freshly built project that `quickscale up` started, as a reader would
try them; `quickscale down` stops it, even after a failure.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.integration

COMMAND_TIMEOUT_SECONDS = 600


def load_doc_commands(root: Path) -> ModuleType:
    """Import the built project's `common/testing/doc_commands.py` (standard library only)."""
    name = "built_project_doc_commands"
    spec = importlib.util.spec_from_file_location(
        name, root / "common" / "testing" / "doc_commands.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def environment() -> dict[str, str]:
    """This environment with the `quickscale` being tested first on PATH.

    DATABASE_URL is left out, as a reader's shell would not have it: the
    project then runs on its own embedded PostgreSQL.
    """
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run(command: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def report(where: str, command: str, result: subprocess.CompletedProcess[str]) -> str:
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
    return f"{where}: `{command}` exited with {result.returncode}\n{tail}"


def test_every_quickscale_command_of_the_docs_runs_in_a_built_project(project_factory: Any) -> None:
    project = project_factory("docsproj")
    root = project.root
    docs = load_doc_commands(root)
    commands = [
        command
        for page in docs.doc_pages(root)
        for command in docs.shell_commands(page)
        if command.runs_the_tool
    ]
    assert commands, "the docs show no quickscale command"
    env = environment()
    started = run("quickscale up", cwd=root, env=env)
    assert started.returncode == 0, report("setup", "quickscale up", started)
    try:
        for command in commands:
            result = run(command.text, cwd=root, env=env)
            assert result.returncode == 0, report(command.where(root), command.text, result)
    finally:
        stopped = run("quickscale down", cwd=root, env=env)
    assert stopped.returncode == 0, report("teardown", "quickscale down", stopped)
