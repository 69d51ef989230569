"""Run Python in the project folder as a fresh process, for tests of start-up behaviour."""

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_python(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with ``args`` in the project folder; capture its text output."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
