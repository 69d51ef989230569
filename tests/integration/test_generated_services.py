"""A service of every type, generated into ONE freshly built project, lints and passes its test.

Uses the session's shared venv (tests/fixtures_project.py), so the only cost
is the project's own ruff, mypy and pytest runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quickscale.cli import app
from quickscale.commands.service import ServiceType, folders


def run_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    return subprocess.run(
        [str(root / ".venv" / "bin" / args[0]), *args[1:]],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_generated_services_of_every_type_lint_and_pass_their_tests_in_a_built_project(
    project_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_factory("genservices")
    monkeypatch.chdir(project.root)
    runner = CliRunner()
    names = [f"my_{kind.value}" for kind in ServiceType]
    for name, kind in zip(names, ServiceType, strict=True):
        result = runner.invoke(app, ["generate-service", name, "--type", kind.value])
        assert result.exit_code == 0, result.output
    kinds = list(ServiceType)
    files = [f"{folders(kind)[0]}/{name}.py" for name, kind in zip(names, kinds, strict=True)]
    tests = [
        f"{folders(kind)[1]}/test_custom_{name}.py" for name, kind in zip(names, kinds, strict=True)
    ]

    ruff = run_in(project.root, "ruff", "check", *files, *tests)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    formatted = run_in(project.root, "ruff", "format", "--check", *files, *tests)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    mypy = run_in(project.root, "mypy", *files, *tests)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    basetemp = f"--basetemp={project.root / '.quickscale' / 'pytest-tmp'}"
    pytest_run = run_in(project.root, "pytest", "-q", "-p", "no:cacheprovider", basetemp, *tests)
    assert pytest_run.returncode == 0, pytest_run.stdout[-3000:] + pytest_run.stderr[-2000:]
    assert f"{3 * len(names)} passed" in pytest_run.stdout
