"""The `quickscale` console script (launch.py): `build` without Typer, the rest through Typer.

The fast path must be invisible: for each command line it takes, the exit code,
stdout, stderr and files written are those of the Typer app; every other
command line reaches Typer; and a `build NAME --no-start` loads neither Typer
nor Rich.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from dotenv import dotenv_values

from quickscale import cli, launch
from quickscale.cli import app
from quickscale.errors import QuickScaleError
from quickscale.generator import copy as template_copy


@dataclass(frozen=True)
class Outcome:
    exit_code: int | str | None
    stdout: str
    stderr: str
    tree: dict[str, object]


def snapshot(directory: Path) -> dict[str, object]:
    """Every path below `directory` with its content and mode; fresh secrets and times left out."""
    tree: dict[str, object] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.is_dir():
            tree[relative] = "directory"
        elif path.name == ".env":
            tree[relative] = (sorted(dotenv_values(path)), path.stat().st_mode)
        elif path.name == "manifest.json":
            manifest = json.loads(path.read_text())
            manifest.pop("created_at")
            tree[relative] = manifest
        else:
            tree[relative] = (path.read_bytes(), path.stat().st_mode)
    return tree


def empty(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def through_typer(runner, argv: list[str]) -> Outcome:
    result = runner.invoke(app, argv)
    return Outcome(result.exit_code, result.stdout, result.stderr, snapshot(Path.cwd()))


def through_launcher(argv: list[str], monkeypatch, capsys) -> Outcome:
    monkeypatch.setattr(sys, "argv", ["quickscale", *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        launch.main()
    captured = capsys.readouterr()
    return Outcome(done.value.code, captured.out, captured.err, snapshot(Path.cwd()))


def typer_must_not_run() -> None:
    raise AssertionError("this command line should not have reached Typer")


def failing_copy(error: BaseException) -> Callable[..., str]:
    def copy_file(*args: object) -> str:
        raise error

    return copy_file


@dataclass(frozen=True)
class Case:
    argv: list[str]
    exit_code: int
    existing: bool = False  # ./taken/keep.txt is there before the build
    up_error: BaseException | None = None
    copy_error: BaseException | None = None
    starts: bool = False


PARITY = {
    "no-start": Case(["shop", "--no-start"], 0),
    "docker-no-start": Case(["shop", "--docker", "--no-start"], 0),
    "no-start-docker": Case(["shop", "--no-start", "--docker"], 0),
    "digit-first": Case(["1shop", "--no-start"], 2),
    "dot": Case(["my.shop", "--docker", "--no-start"], 2),
    "emoji-code-in-name": Case(["x:smile:", "--no-start"], 2),
    "too-long": Case(["a" * 64, "--no-start"], 2),
    "existing-target": Case(["taken", "--no-start"], 1, existing=True),
    "interrupted-copy": Case(["halfway", "--no-start"], 130, copy_error=KeyboardInterrupt()),
    "bug-in-copy": Case(["halfway", "--no-start"], 1, copy_error=ValueError("bug")),
    "start": Case(["shop"], 0, starts=True),
    "start-docker": Case(["shop", "--docker"], 0, starts=True),
    "failed-start": Case(
        ["busy"], 1, up_error=QuickScaleError("Port 8000 is in use. Set WEB_PORT."), starts=True
    ),
}


@pytest.mark.parametrize("case", PARITY.values(), ids=PARITY.keys())
def test_the_fast_path_matches_typer(runner, in_tmp, fake_runtime, monkeypatch, capsys, case):
    def arrange() -> None:
        empty(in_tmp)
        if case.existing:
            (in_tmp / "taken").mkdir()
            (in_tmp / "taken/keep.txt").write_text("mine")

    fake_runtime.up_error = case.up_error
    if case.copy_error is not None:
        monkeypatch.setattr(template_copy, "_copy_file", failing_copy(case.copy_error))
    monkeypatch.delenv("QUICKSCALE_VERBOSE", raising=False)
    monkeypatch.setattr(cli, "main", typer_must_not_run)
    argv = ["build", *case.argv]
    assert launch.fast_build(argv, {}) is not None

    arrange()
    typer = through_typer(runner, argv)
    arrange()
    fast = through_launcher(argv, monkeypatch, capsys)

    assert fast == typer
    assert fast.exit_code == case.exit_code
    if case.exit_code:
        assert len(fast.stderr.splitlines()) == 1 and fast.stderr.startswith("Error: ")
    else:
        assert fast.stderr == ""
        assert f"Created {case.argv[0]} in {in_tmp / case.argv[0]}" in fast.stdout
    assert fake_runtime.names() == (["up", "up"] if case.starts else [])


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "shop"],
        ["build", "shop", "--no-start"],
        ["build", "shop", "--docker"],
        ["build", "shop", "--docker", "--no-start"],
        ["build", "shop", "--no-start", "--docker"],
        ["build", "", "--no-start"],  # refused by the same name check on both paths
    ],
)
def test_the_fast_grammar(argv):
    build = launch.fast_build(argv, {})

    assert build == launch.FastBuild(
        name=argv[1], no_start="--no-start" in argv, docker="--docker" in argv
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["build"],
        ["build", "--no-start"],
        ["build", "--no-start", "shop"],
        ["build", "-shop", "--no-start"],
        ["build", "--", "shop"],
        ["build", "shop", "--"],
        ["build", "shop", "--help"],
        ["build", "shop", "-h"],
        ["build", "shop", "other"],
        ["build", "shop", "--no-start", "--no-start"],
        ["build", "shop", "--docker", "--docker"],
        ["build", "shop", "--no-start=yes"],
        ["build", "shop", "--bogus"],
        ["--verbose", "build", "shop", "--no-start"],
        ["Build", "shop"],
        ["up"],
        ["help", "build"],
        ["--version"],
    ],
)
def test_other_command_lines_are_left_to_typer(argv):
    assert launch.fast_build(argv, {}) is None


@pytest.mark.parametrize("variable", ["QUICKSCALE_VERBOSE", "_QUICKSCALE_COMPLETE"])
def test_an_environment_typer_reads_is_left_to_typer(variable):
    assert launch.fast_build(["build", "shop", "--no-start"], {variable: "1"}) is None


def test_build_help_is_typers_help(monkeypatch, capsys, in_tmp):
    outcome = through_launcher(["build", "--help"], monkeypatch, capsys)

    assert outcome.exit_code == 0
    assert outcome.stdout.startswith("Usage: quickscale build [OPTIONS]")
    assert "--no-start" in outcome.stdout and "--docker" in outcome.stdout
    assert outcome.tree == {}


def test_an_unknown_option_is_typers_usage_error(monkeypatch, capsys, in_tmp):
    outcome = through_launcher(["build", "shop", "--bogus"], monkeypatch, capsys)

    assert outcome.exit_code == 2
    assert "No such option: --bogus" in outcome.stderr
    assert "Usage: quickscale build" in outcome.stderr
    assert outcome.tree == {}


def test_verbose_from_the_environment_shows_typers_traceback(monkeypatch, capsys, in_tmp):
    monkeypatch.setenv("QUICKSCALE_VERBOSE", "1")

    outcome = through_launcher(["build", "1shop", "--no-start"], monkeypatch, capsys)

    assert outcome.exit_code == 2
    assert "Traceback" in outcome.stderr
    assert outcome.stderr.splitlines()[-1].startswith("Error: The project name '1shop'")


def test_the_console_script_is_the_launcher():
    (script,) = entry_points(group="console_scripts", name="quickscale")

    assert script.load() is launch.main


LOADED = """\
import json, pathlib, sys
from quickscale import launch
from quickscale.generator import copy
template = pathlib.Path(sys.argv[1])
copy.template_root = lambda: template
sys.argv = ["quickscale", *sys.argv[2:]]
try:
    launch.main()
except SystemExit as done:
    code = done.code
roots = {name.partition(".")[0] for name in sys.modules}
print(json.dumps({"code": code, "loaded": sorted(roots & {"typer", "click", "rich"})}))
"""


@pytest.mark.parametrize(
    ("argv", "typer", "rich"),
    [
        (["build", "fast", "--no-start"], False, False),
        (["build", "fast", "--docker", "--no-start"], False, False),
        (["build", "1fast", "--no-start"], False, True),  # the error line is printed with Rich
        (["build", "--help"], True, None),  # Typer's help: the check does see Typer
    ],
    ids=["no-start", "docker-no-start", "invalid-name", "help"],
)
def test_what_a_command_line_imports(in_tmp, template, argv, typer, rich: bool | None):
    done = subprocess.run(
        [sys.executable, "-c", LOADED, str(template), *argv],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(in_tmp)},
    )

    report = json.loads(done.stdout.splitlines()[-1])
    assert ("typer" in report["loaded"]) is typer, done.stderr
    if rich is not None:
        assert ("rich" in report["loaded"]) is rich, done.stderr
    assert "click" not in report["loaded"]
    if argv[1] == "fast":
        assert report["code"] == 0, done.stderr
        assert (in_tmp / "fast/.quickscale/manifest.json").is_file()
