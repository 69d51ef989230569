"""Make sure a project's `.gitignore` hides state and secrets but keeps the manifest."""

from __future__ import annotations

from pathlib import Path

KEEP_MANIFEST = "!.quickscale/manifest.json"
DEFAULT_GITIGNORE = """\
# Secrets and local state written by QuickScale (the manifest is kept)
.env
.venv/
.quickscale/*
!.quickscale/manifest.json

# Caches
__pycache__/
*.py[co]
.pytest_cache/
.mypy_cache/
.ruff_cache/
test-artifacts/
"""
# A pattern that ignores the whole folder stops git from re-including anything in it.
_WHOLE_FOLDER = {".quickscale", ".quickscale/", "/.quickscale", "/.quickscale/"}
_KEEP_FORMS = {KEEP_MANIFEST, "!/.quickscale/manifest.json"}


def ensure_gitignore(project_dir: Path) -> bool:
    """Write or fix `.gitignore`: `.env` and `.quickscale/*` ignored, the manifest kept.

    Return True when the file was written or changed.
    """
    path = project_dir / ".gitignore"
    if not path.is_file():
        path.write_text(DEFAULT_GITIGNORE, encoding="utf-8")
        return True
    original = path.read_text(encoding="utf-8")
    lines = [
        "/.quickscale/*" if line.strip() in _WHOLE_FOLDER else line
        for line in original.splitlines()
    ]
    stripped = [line.strip() for line in lines]
    ignores = [i for i, line in enumerate(stripped) if line.lstrip("/") == ".quickscale/*"]
    keeps = [i for i, line in enumerate(stripped) if line in _KEEP_FORMS]
    if not {".env", "/.env"} & set(stripped):
        lines.append(".env")
    if not ignores:
        lines.append(".quickscale/*")
    if not keeps or (ignores and keeps[-1] < ignores[-1]):
        lines.append(KEEP_MANIFEST)
    text = "\n".join(lines) + "\n"
    if text == original:
        return False
    path.write_text(text, encoding="utf-8")
    return True
