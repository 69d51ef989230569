"""Say so when a project starts under a different runtime than last time.

A project's data lives where its runtime keeps it (the local cluster under
`.quickscale/`, or Docker's named volumes), so changing QUICKSCALE_RUNTIME in
`.env` does not move it. `up` records the runtime it started in
`.quickscale/last-runtime`; the next `up` under another runtime returns a
warning for the user instead of switching silently.
"""

from __future__ import annotations

from quickscale.project import Project

MARKER = "last-runtime"

_WHERE = {
    "local": "the local runtime's database (under .quickscale/ or /var/lib/quickscale/)",
    "docker": "Docker's named volumes",
}


def note_runtime_switch(project: Project, runtime: str) -> str | None:
    """Record `runtime` as the one that started `project`; return a warning if it changed."""
    marker = project.state_dir / MARKER
    try:
        previous = marker.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        previous = ""
    if previous != runtime:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{runtime}\n", encoding="utf-8")
        except OSError:
            pass
    if not previous or previous == runtime:
        return None
    before = _WHERE.get(previous, f"the {previous} runtime")
    return (
        f"Runtime switched: this project last ran with the {previous} runtime and now runs "
        f"with {runtime} (QUICKSCALE_RUNTIME in .env). Its data did not move: it stays in "
        f"{before}, and the {runtime} runtime uses its own database. To go back, set "
        f"QUICKSCALE_RUNTIME={previous} in .env."
    )
