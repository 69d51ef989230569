"""The one error type the CLI turns into a single line and an exit code."""

from __future__ import annotations

USAGE_EXIT_CODE = 2


class QuickScaleError(Exception):
    """A failure the user can act on: say what happened, then what to do.

    The command line (`output.report_failure`) prints `str(error)` as one line
    and exits with `exit_code`; the traceback is shown only with `--verbose`.
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class NotInProjectError(QuickScaleError):
    """Raised when a project command runs outside a generated project."""

    def __init__(self, command: str) -> None:
        super().__init__(
            f"'quickscale {command}' must run inside a QuickScale project "
            "(a directory with .quickscale/manifest.json). "
            "cd into one, or create one with 'quickscale build NAME'.",
            exit_code=USAGE_EXIT_CODE,
        )
