"""The `quickscale` console script: `build NAME --no-start` without Typer, all else through Typer.

Why: issue #4's benchmark (bench/build_and_boot.py) asks `quickscale build NAME
--no-start` to take at most twice a plain `python -c "shutil.copytree(...)"` of
the template. Measured, the build was about 2.0x: Python starts in ~13 ms and
the copy itself takes ~25 ms (the copytree baseline is ~70 ms in all), our own
imports ~20 ms, but `import typer` alone ~55-60 ms (typer 0.28 vendors click).
Scripts and the benchmark write that command line most, so it skips the import.

Typer stays THE command line (DESIGN.md, STYLE.md): cli.py is the source of
truth for every command, option and help text. This module only routes. It
recognises one grammar, `build NAME` followed by `--no-start` and/or `--docker`
(each at most once, in any order, NAME not starting with `-`), and then calls
the same `commands.build.run` and `output.report_failure` that cli.py calls, so
the lines printed, the one-line errors and the exit codes are the same. Any
other command line (help, `--verbose`, other commands or options, `--`, a
missing or extra argument), or an environment that Typer would read
(QUICKSCALE_VERBOSE, shell completion), goes to the Typer app unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from quickscale.output import report_failure

FAST_OPTIONS = frozenset({"--no-start", "--docker"})
# Set, these change what Typer does with the same argv: route them to Typer.
TYPER_ENVIRONMENT = ("QUICKSCALE_VERBOSE", "_QUICKSCALE_COMPLETE")


@dataclass(frozen=True)
class FastBuild:
    """A `quickscale build` command line that needs nothing from Typer."""

    name: str
    no_start: bool
    docker: bool


def fast_build(argv: Sequence[str], environ: Mapping[str, str]) -> FastBuild | None:
    """Return the build `argv` asks for if it is in the fast grammar, else None (use Typer)."""
    if len(argv) < 2 or argv[0] != "build" or argv[1].startswith("-"):
        return None
    options = argv[2:]
    if len(set(options)) != len(options) or not FAST_OPTIONS.issuperset(options):
        return None
    if any(variable in environ for variable in TYPER_ENVIRONMENT):
        return None
    return FastBuild(argv[1], no_start="--no-start" in options, docker="--docker" in options)


def run_fast_build(build: FastBuild) -> int:
    """Run `build` as cli.py's `build` command would; return the exit code."""
    try:
        from quickscale.commands import build as command

        command.run(build.name, no_start=build.no_start, docker=build.docker)
    except (Exception, KeyboardInterrupt) as error:
        return report_failure(error)
    return 0


def main() -> None:
    """Console-script entry point (`quickscale`)."""
    build = fast_build(sys.argv[1:], os.environ)
    if build is None:
        from quickscale.cli import main as typer_main

        typer_main()
        return
    sys.exit(run_fast_build(build))
