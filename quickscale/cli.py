"""The `quickscale` command line: one thin function per command.

Each function parses its options, calls `quickscale/commands/<module>.py` and
prints through Rich (helpers in output.py). A QuickScaleError becomes one line
on stderr and its exit code; the traceback is shown only with `--verbose`.
Command modules and Rich are imported inside the functions so `--version` stays
fast. This module is the source of truth for the commands, their options and
help; the console script (launch.py) runs `build NAME [--no-start] [--docker]`
without importing Typer and hands every other command line to `main` here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from quickscale.errors import QuickScaleError
from quickscale.output import print_running, report_failure, stdout

if TYPE_CHECKING:
    from typer._click import Context as ClickContext

    from quickscale.project import Project


class _Group(TyperGroup):
    """Turn errors raised by any command into one line and an exit code."""

    def invoke(self, ctx: ClickContext) -> Any:
        verbose = bool(ctx.params.get("verbose"))
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except (Exception, KeyboardInterrupt) as error:
            raise typer.Exit(report_failure(error, verbose=verbose)) from None


def _version_callback(value: bool) -> None:
    if value:
        from quickscale.commands.system import version_text

        typer.echo(version_text())
        raise typer.Exit()


app = typer.Typer(
    name="quickscale",
    cls=_Group,
    add_completion=False,
    invoke_without_command=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Generate and run a complete Django SaaS project.",
)
PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.callback()
def root(
    ctx: typer.Context,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", envvar="QUICKSCALE_VERBOSE", help="Show tracebacks on errors."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Generate and run a complete Django SaaS project."""
    if ctx.invoked_subcommand is None:
        _print_command_list()


@app.command()
def build(
    name: Annotated[
        str, typer.Argument(help="Project name: a letter, then letters, digits, -, _.")
    ],
    no_start: Annotated[
        bool, typer.Option("--no-start", help="Write the project without starting it.")
    ] = False,
    docker: Annotated[
        bool,
        typer.Option(
            "--docker",
            help="Run the project with Docker (docker compose) instead of the local runtime.",
        ),
    ] = False,
) -> None:
    """Create a new project in ./NAME and start it."""
    from quickscale.commands import build as command

    command.run(name, no_start=no_start, docker=docker)


@app.command()
def up() -> None:
    """Start the project: database, bootstrap, web server, worker."""
    from quickscale.commands import checks, lifecycle

    project = checks.require_project("up")
    out = stdout()
    out.print(f"Starting {project.name}{_first_start_note(project)}...", markup=False)
    result = lifecycle.up(project)
    print_running(out, project.name, result)


def _first_start_note(project: Project) -> str:
    """Say why a start takes a while: a local project whose packages are not installed yet."""
    if project.runtime_name != "local":
        return ""
    from quickscale.runtime.venv import is_current

    return "" if is_current(project.root) else " (installing its packages first)"


@app.command()
def restart() -> None:
    """Restart web server and worker for what reload does not pick up: .env, packages, folders."""
    from quickscale.commands import checks, lifecycle

    project = checks.require_project("restart")
    out = stdout()
    out.print(f"Restarting {project.name}...", markup=False)
    result = lifecycle.restart(project)
    print_running(out, project.name, result)


@app.command()
def down() -> None:
    """Stop the project (worker, web server, database), keeping its data."""
    from quickscale.commands import checks, lifecycle

    project = checks.require_project("down")
    lifecycle.runtime_for(project).down()
    stdout().print(f"Stopped {project.name}. Its data is kept; start again with: quickscale up")


@app.command()
def ps() -> None:
    """Show what runs, on which port, with which pid."""
    from rich.table import Table

    from quickscale.commands import checks, lifecycle

    project = checks.require_project("ps")
    table = Table(title=f"{project.name} ({project.runtime_name} runtime)")
    for column in ("Service", "State", "Port", "PID", "Detail"):
        table.add_column(column)
    for status in lifecycle.runtime_for(project).status():
        table.add_row(
            status.name,
            status.state.value,
            str(status.port or ""),
            str(status.pid or ""),
            status.detail,
        )
    stdout().print(table)


class LogService(StrEnum):
    web = "web"
    worker = "worker"
    db = "db"
    mail = "mail"


@app.command()
def logs(
    service: Annotated[LogService, typer.Argument(help="Which log: web, worker, db or mail.")] = (
        LogService.web
    ),
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = (
        False
    ),
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, help="How many lines to show first.")
    ] = 50,
) -> None:
    """Show (or follow) the web, worker, db or mail log."""
    from quickscale.commands import checks, lifecycle

    project = checks.require_project("logs")
    runtime = lifecycle.runtime_for(project)
    raise typer.Exit(runtime.logs(service.value, follow=follow, lines=lines))


@app.command()
def shell() -> None:
    """Open a shell with the project's environment."""
    from quickscale.commands import checks, lifecycle

    raise typer.Exit(lifecycle.runtime_for(checks.require_project("shell")).shell())


@app.command("django-shell", context_settings=PASSTHROUGH)
def django_shell(ctx: typer.Context) -> None:
    """Open Django's shell; extra arguments go to `manage.py shell`."""
    from quickscale.commands import checks, lifecycle

    project = checks.require_project("django-shell")
    raise typer.Exit(lifecycle.runtime_for(project).django_shell(ctx.args))


@app.command(context_settings=PASSTHROUGH, add_help_option=False)
def manage(ctx: typer.Context) -> None:
    """Run any manage.py command; everything after `manage` is passed on."""
    from quickscale.commands import checks, lifecycle

    raise typer.Exit(lifecycle.runtime_for(checks.require_project("manage")).manage(ctx.args))


@app.command("generate-service")
def generate_service(
    name: Annotated[str, typer.Argument(help="Service name: lowercase letters, digits and _.")],
    service_type: Annotated[
        str,
        typer.Option(
            "--type", help="basic, text_processing, image_processing, data_validation or llm."
        ),
    ] = "basic",
    credit_cost: Annotated[
        str | None, typer.Option("--credit-cost", help="Credits per call, e.g. 1.5.")
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Shown on the services page.")
    ] = None,
) -> None:
    """Write services/custom/NAME.py (type llm: llm/custom/) and its test; say how it goes live."""
    from quickscale.commands import checks
    from quickscale.commands import service as command

    project = checks.require_project("generate-service")
    try:
        kind = command.ServiceType(service_type)
    except ValueError:
        kinds = ", ".join(member.value for member in command.ServiceType)
        raise QuickScaleError(
            f"--type {service_type!r} is not one of: {kinds}.", exit_code=2
        ) from None
    done = command.generate(project, name, kind, credit_cost=credit_cost, description=description)
    out = stdout()
    root = project.root
    out.print(f"Wrote {done.module.relative_to(root)} and {done.test.relative_to(root)}.")
    out.print(command.activation(project).value, markup=False)
    if kind is command.ServiceType.llm:
        out.print(
            f"Change its provider, model, limits or prices per 1,000 tokens: quickscale manage "
            f"configure_llm_service {name} --model NAME (or the admin). Switch it off: "
            f"quickscale manage configure_service {name} --update --inactive",
            markup=False,
        )
        return
    out.print(
        f"Change its cost or state: quickscale manage configure_service {name} "
        "--update --credit-cost 2 (or --inactive)",
        markup=False,
    )


@app.command()
def check(
    stripe: Annotated[
        bool,
        typer.Option(
            "--stripe",
            help="Also check the project's Stripe account before going live "
            "(runs manage.py stripe_check; reads only).",
        ),
    ] = False,
) -> None:
    """Check this machine and, inside a project, its .env and port."""
    from rich.table import Table
    from rich.text import Text

    from quickscale.commands import checks, lifecycle, system

    # Outside a project there is no account to check: say so before the machine table.
    project = checks.require_project("check --stripe") if stripe else None

    rows = system.run_checks()
    styles = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
    table = Table(title="quickscale check")
    for column in ("Check", "Result", "Detail", "Fix"):
        table.add_column(column)
    for row in rows:
        outcome = row.outcome.value
        table.add_row(
            row.name, Text(outcome, style=styles[outcome]), Text(row.detail), Text(row.fix)
        )
    stdout().print(table)
    failed = system.has_failures(rows)
    if project is not None:
        # The project's own command knows its settings and Stripe; its lines are the report.
        stripe_code = lifecycle.runtime_for(project).manage(["stripe_check"])
        failed = failed or stripe_code != 0
    if failed:
        raise typer.Exit(1)


@app.command()
def destroy(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the project: stop it, remove its data and its folder."""
    from rich.prompt import Prompt

    from quickscale.commands import checks, lifecycle

    project = checks.require_project("destroy", env_optional=True)
    if not yes:
        expected = project.root.name
        stdout().print(
            f"This deletes {project.root}, its database and everything in it.", markup=False
        )
        try:
            answer = Prompt.ask(f"Type [bold]{expected}[/] to confirm", console=stdout())
        except EOFError:
            answer = ""
        lifecycle.confirm_destroy(project, answer)
    done = lifecycle.destroy(project)
    out = stdout()
    out.print(f"Removed {done.root}.", markup=False)
    if done.moved_to is not None:
        out.print(
            f"Your shell is still in the deleted folder; run: cd {done.moved_to}", markup=False
        )


@app.command("help")
def help_(
    ctx: typer.Context,
    command: Annotated[str | None, typer.Argument(help="A command to explain.")] = None,
) -> None:
    """List the commands, or show one command's help."""
    from quickscale.commands.system import command_help

    if command is None:
        _print_command_list()
        return
    entry = command_help(command)
    parent = ctx.parent
    group = parent.command if parent is not None else None
    sub = None
    if parent is not None and isinstance(group, TyperGroup):
        sub = group.get_command(parent, command)
    if entry is None or sub is None:
        raise QuickScaleError(
            f"There is no command {command!r}. Run 'quickscale help' to list them.", exit_code=2
        )
    sub_ctx = sub.context_class(sub, info_name=command, parent=parent)
    out = stdout()
    out.print(sub.get_help(sub_ctx), markup=False)
    out.print(f"\nExample: {entry.example}", markup=False)


@app.command()
def version() -> None:
    """Print QuickScale's version."""
    from quickscale.commands.system import version_text

    typer.echo(version_text())


def _print_command_list() -> None:
    from rich.table import Table

    from quickscale.commands.system import COMMANDS, version_text

    table = Table(title=f"{version_text()}: commands", title_justify="left")
    for column in ("Command", "What it does", "Example"):
        table.add_column(column)
    for entry in COMMANDS:
        table.add_row(entry.name, entry.summary, entry.example)
    out = stdout()
    out.print(table)
    out.print(
        "Details: quickscale help COMMAND. Global options: --verbose, --version.", markup=False
    )


def main() -> None:
    """Run the Typer app on `sys.argv`; launch.py (the console script) calls it."""
    app(prog_name="quickscale")
