"""Fixtures for runtime tests: built projects sharing one venv (see tests/fixtures_project.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures_project import project_factory, shared_venv

__all__ = ["project_factory", "shared_venv"]
