"""`quickscale version` and `quickscale --version`."""

from __future__ import annotations

import subprocess
import sys

import quickscale
from quickscale.cli import app


def test_version_command_prints_the_version(runner):
    result = runner.invoke(app, ["version"])

    assert result.exit_code == 0
    assert result.stdout.strip() == f"quickscale {quickscale.__version__}"


def test_version_option_prints_the_version(runner):
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.stdout.strip() == f"quickscale {quickscale.__version__}"


def test_the_console_entry_point_prints_the_version():
    done = subprocess.run(
        [sys.executable, "-c", "from quickscale.cli import main; main()", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"quickscale {quickscale.__version__}"


def test_version_runs_anywhere(runner, in_tmp):
    assert not any(in_tmp.iterdir())
    assert runner.invoke(app, ["version"]).exit_code == 0
