"""The Runtime interface every way of running a project implements.

Modelled on Django's `SessionBase`: the shared behaviour lives here, and the
methods a concrete runtime must provide raise `NotImplementedError` naming
themselves. `quickscale.runtime.select.get_runtime` picks the implementation
from the project's recorded `QUICKSCALE_RUNTIME`; callers never import a
concrete runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from quickscale.project import Project


class ServiceState(str, Enum):  # noqa: UP042 (str() and format() stay as in 3.10)
    RUNNING = "running"
    STOPPED = "stopped"
    CRASHED = "crashed"  # exited by itself: `up` starts it again
    EXTERNAL = "external"  # e.g. a database the user's DATABASE_URL points at


@dataclass(frozen=True)
class ServiceStatus:
    """One row of `quickscale ps`."""

    name: str
    state: ServiceState
    port: int | None = None
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class UpResult:
    """What `up` reports back to the user."""

    url: str
    already_running: bool = False
    notes: tuple[str, ...] = ()


class Runtime:
    """Run, inspect and tear down one generated project."""

    name: str = "base"

    def __init__(self, project: Project) -> None:
        self.project = project

    # Methods that child classes must implement.

    def up(self) -> UpResult:
        """Start database, web server and worker, run `bootstrap`, wait for /health/."""
        raise NotImplementedError("subclasses of Runtime must provide an up() method")

    def down(self) -> None:
        """Stop worker, web and database, keeping all data."""
        raise NotImplementedError("subclasses of Runtime must provide a down() method")

    def status(self) -> list[ServiceStatus]:
        """Return the state of every service of the project."""
        raise NotImplementedError("subclasses of Runtime must provide a status() method")

    def logs(self, service: str, *, follow: bool, lines: int) -> int:
        """Write the last `lines` lines of a service's log to stdout; follow if asked."""
        raise NotImplementedError("subclasses of Runtime must provide a logs() method")

    def shell(self) -> int:
        """Open an interactive shell with the project's environment; return its exit code."""
        raise NotImplementedError("subclasses of Runtime must provide a shell() method")

    def manage(self, args: Sequence[str]) -> int:
        """Run `manage.py ARGS` (starting the database alone if needed); return its exit code."""
        raise NotImplementedError("subclasses of Runtime must provide a manage() method")

    def destroy(self) -> None:
        """Stop everything and delete the project's data (database, volumes)."""
        raise NotImplementedError("subclasses of Runtime must provide a destroy() method")

    def restart(self) -> UpResult:
        """Start the web server and the worker anew from the project as it is now.

        For every change reload does not pick up (`.env`, packages, new folders).
        The database keeps running; a stopped project is started as `up` starts it.
        """
        raise NotImplementedError("subclasses of Runtime must provide a restart() method")

    # Shared behaviour.

    def django_shell(self, args: Sequence[str] = ()) -> int:
        """Open Django's shell; arguments and exit code pass through."""
        return self.manage(["shell", *args])

    def reloads_code(self) -> bool:
        """True while the web server runs and picks up code changes by itself."""
        return False
