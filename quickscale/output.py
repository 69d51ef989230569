"""What the command line prints, shared by the Typer app (cli.py) and its fast path (launch.py).

Nothing here imports Typer, and Rich is imported only inside the functions
that need it, so `quickscale build NAME --no-start` can print its two plain
lines without loading either.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from quickscale.errors import QuickScaleError

if TYPE_CHECKING:
    from rich.console import Console

    from quickscale.runtime.base import UpResult

INTERRUPTED_EXIT_CODE = 130


def say(line: str) -> None:
    """Print one plain line on stdout, without Rich."""
    print(line, flush=True)  # noqa: T201 - this is the CLI's plain output


def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def report_failure(error: Exception | KeyboardInterrupt, *, verbose: bool = False) -> int:
    """Print `error` as one `Error: ...` line on stderr and return the exit code to end with.

    A QuickScaleError says what to do and carries its code; an interrupt exits
    130; anything else is a bug to report. The traceback comes first, and only
    with `verbose` (never for an interrupt).
    """
    if isinstance(error, QuickScaleError):
        message, code = str(error), error.exit_code
    elif isinstance(error, KeyboardInterrupt):
        message, code, verbose = (
            "Interrupted. Run the command again when ready.",
            INTERRUPTED_EXIT_CODE,
            False,
        )
    else:
        message, code = (
            f"Unexpected error: {error!r}. Run again with --verbose for the traceback "
            "and report it.",
            1,
        )
    if verbose:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    stderr().print(f"Error: {message}", markup=False, soft_wrap=True)
    return code


def print_running(out: Console, name: str, result: UpResult) -> None:
    """Say where a started project runs, the runtime's notes, and the starter logins."""
    from quickscale.commands.build import STARTER_LOGINS

    state = "was already running" if result.already_running else "is running"
    out.print(f"{name} {state} at {result.url}", markup=False)
    for note in result.notes:
        out.print(note, markup=False)
    logins = ", ".join(f"{email} / {password} ({kind})" for email, password, kind in STARTER_LOGINS)
    out.print(f"Starter logins: {logins}", markup=False)
