"""`quickscale build NAME`: what the build writes, what it refuses, and what it leaves behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from quickscale.cli import app
from quickscale.errors import QuickScaleError
from quickscale.generator import copy as template_copy
from quickscale.generator.manifest import file_sha256, tree_hash

EXCLUDED = (
    "__pycache__",
    ".venv",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "test-artifacts",
    "staticfiles",
    "node_modules",
)


def build(runner, *args: str):
    return runner.invoke(app, ["build", *args])


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_build_no_start_writes_a_project_and_does_not_start_it(runner, in_tmp, fake_runtime):
    result = build(runner, "myproject", "--no-start")

    assert result.exit_code == 0, result.output
    root = in_tmp / "myproject"
    assert (root / "manage.py").read_text() == "import sys\n"
    assert os.access(root / "manage.py", os.X_OK)
    assert (root / "static/vendor/htmx.min.js").is_file()
    assert (root / ".quickscale/manifest.json").is_file()
    assert "cd myproject && quickscale up" in result.stdout
    assert fake_runtime.calls == []
    assert leftovers(in_tmp) == ["myproject"]


def test_build_copies_no_caches_or_state(runner, in_tmp):
    assert build(runner, "clean", "--no-start").exit_code == 0

    names = {path.name for path in (in_tmp / "clean").rglob("*")}
    assert not names & set(EXCLUDED)
    assert not [path for path in (in_tmp / "clean").rglob("*.pyc")]
    assert not (in_tmp / "clean/.quickscale/logs").exists()


def test_env_parses_and_carries_fresh_values(runner, in_tmp):
    assert build(runner, "envy", "--no-start").exit_code == 0

    env_path = in_tmp / "envy/.env"
    env = dotenv_values(env_path)
    assert env["PROJECT_NAME"] == "envy"
    assert env["QUICKSCALE_RUNTIME"] == "local"
    assert len(env["SECRET_KEY"] or "") >= 50
    assert env["SECRET_KEY"] != "!!!SET SECRET_KEY!!!"
    assert env["DB_PASSWORD"] not in ("", "adminpasswd")
    assert env["WEB_PORT"] == "8000"  # keys build does not own are kept as they are
    assert env["DB_USER"] == "admin"
    assert env_path.stat().st_mode & 0o077 == 0  # secrets: owner only
    assert "# replaced by build" in env_path.read_text()  # inline comments survive


def test_two_builds_get_different_secrets(runner, in_tmp):
    assert build(runner, "one", "--no-start").exit_code == 0
    assert build(runner, "two", "--no-start").exit_code == 0

    first, second = dotenv_values(in_tmp / "one/.env"), dotenv_values(in_tmp / "two/.env")
    assert first["SECRET_KEY"] != second["SECRET_KEY"]
    assert first["DB_PASSWORD"] != second["DB_PASSWORD"]


def test_each_build_gets_its_own_stripe_shaped_webhook_secret(runner, in_tmp):
    assert build(runner, "one", "--no-start").exit_code == 0
    assert build(runner, "two", "--no-start").exit_code == 0

    first, second = (
        dotenv_values(in_tmp / name / ".env")["STRIPE_WEBHOOK_SECRET"] or ""
        for name in ("one", "two")
    )
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", first), first
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", second), second
    assert first != second


def test_keys_missing_from_the_example_are_appended(runner, in_tmp, template):
    (template / ".env.example").write_text("# nearly empty\nDEBUG=True\n")

    assert build(runner, "sparse", "--no-start").exit_code == 0

    env = dotenv_values(in_tmp / "sparse/.env")
    assert env["DEBUG"] == "True"
    assert env["PROJECT_NAME"] == "sparse"
    assert env["QUICKSCALE_RUNTIME"] == "local"
    assert env["SECRET_KEY"] and env["DB_PASSWORD"]


def test_manifest_hashes_match_the_written_files(runner, in_tmp, template):
    assert build(runner, "hashed", "--no-start").exit_code == 0

    root = in_tmp / "hashed"
    manifest = json.loads((root / ".quickscale/manifest.json").read_text())
    assert manifest["generator_version"]
    assert manifest["created_at"]
    files = manifest["files"]
    assert "manage.py" in files and "core/settings.py" in files
    assert ".env" not in files
    for relative, digest in files.items():
        assert file_sha256(root / relative) == digest, relative
    template_files = {
        relative: file_sha256(template / relative)
        for relative in files
        if (template / relative).is_file()
    }
    assert manifest["template_hash"] == tree_hash(template_files)


def test_gitignore_hides_state_but_keeps_the_manifest(runner, in_tmp, template):
    (template / ".gitignore").write_text("*.log\n.quickscale/\n")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    assert build(runner, "tracked", "--no-start").exit_code == 0

    root = in_tmp / "tracked"
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)

    def ignored(path: str) -> bool:
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=root, check=False)
        return done.returncode == 0

    assert not ignored(".quickscale/manifest.json")
    assert ignored(".quickscale/logs/web.log")
    assert ignored(".env")
    assert ignored("server.log")  # the template's own rules are kept


def test_a_template_without_gitignore_gets_one(runner, in_tmp):
    assert build(runner, "plain", "--no-start").exit_code == 0

    lines = (in_tmp / "plain/.gitignore").read_text().splitlines()
    assert {".env", ".venv/", ".quickscale/*", "!.quickscale/manifest.json"} <= set(lines)


@pytest.mark.parametrize(
    "name",
    ["1project", "-dash", "_under", "my project", "my.project", "a/b", "café", "x" * 64, ""],
    ids=[
        "digit-first",
        "dash-first",
        "underscore-first",
        "space",
        "dot",
        "slash",
        "accent",
        "too-long",
        "empty",
    ],
)
def test_invalid_names_are_refused_and_nothing_is_written(runner, in_tmp, name):
    result = build(runner, "--no-start", "--", name)

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert leftovers(in_tmp) == []


def test_the_longest_valid_name_is_accepted(runner, in_tmp):
    name = "a" + "b-_1" * 15 + "cd"
    assert len(name) == 63
    assert build(runner, name, "--no-start").exit_code == 0


def test_an_existing_path_is_refused_and_left_untouched(runner, in_tmp):
    (in_tmp / "taken").mkdir()
    (in_tmp / "taken/keep.txt").write_text("mine")

    result = build(runner, "taken", "--no-start")

    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert leftovers(in_tmp) == ["taken"]
    assert leftovers(in_tmp / "taken") == ["keep.txt"]


def test_an_existing_file_is_refused_too(runner, in_tmp):
    (in_tmp / "taken").write_text("a file")

    result = build(runner, "taken", "--no-start")

    assert result.exit_code == 1
    assert leftovers(in_tmp) == ["taken"]


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (KeyboardInterrupt(), 130),
        (OSError(28, "No space left on device"), 1),
        (ValueError("bug"), 1),
    ],
    ids=["interrupt", "disk-full", "bug"],
)
def test_a_failed_or_interrupted_copy_leaves_nothing(runner, in_tmp, monkeypatch, error, exit_code):
    real_copy = template_copy._copy_file
    copied = []

    def copy_some_then_fail(entry: os.DirEntry[str], target: str) -> str:
        if len(copied) == 3:
            raise error
        copied.append(entry.path)
        return real_copy(entry, target)

    monkeypatch.setattr(template_copy, "_copy_file", copy_some_then_fail)

    result = build(runner, "halfway", "--no-start")

    assert result.exit_code == exit_code
    assert len(copied) == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert leftovers(in_tmp) == []


def test_a_failure_while_writing_env_leaves_nothing(runner, in_tmp, monkeypatch):
    from quickscale.generator import envfile

    def broken(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(envfile, "write_env", broken)

    result = build(runner, "noenv", "--no-start")

    assert result.exit_code == 1
    assert "nothing was left behind" in result.stderr
    assert leftovers(in_tmp) == []


def test_a_missing_template_is_a_clear_error(runner, in_tmp, monkeypatch, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty-template")
    monkeypatch.setattr(template_copy, "template_root", lambda: empty)

    result = build(runner, "orphan", "--no-start")

    assert result.exit_code == 1
    assert "template" in result.stderr
    assert leftovers(in_tmp) == []


def test_build_starts_the_project_and_prints_url_and_logins(runner, in_tmp, fake_runtime):
    result = build(runner, "live")

    assert result.exit_code == 0, result.output
    assert fake_runtime.names() == ["up"]
    assert "http://localhost:8123" in result.stdout
    assert "user@test.com / userpasswd" in result.stdout
    assert "admin@test.com / adminpasswd" in result.stdout
    assert "using 8123" in result.stdout


def test_a_failed_start_keeps_the_project_and_says_how_to_retry(runner, in_tmp, fake_runtime):
    fake_runtime.up_error = QuickScaleError("Port 8000 is in use. Set WEB_PORT in .env.")

    result = build(runner, "busy")

    assert result.exit_code == 1
    assert (in_tmp / "busy/.quickscale/manifest.json").is_file()
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "Created" in message and "Port 8000 is in use" in message
    assert "cd busy && quickscale up" in message


def test_an_interrupted_start_keeps_the_project(runner, in_tmp, fake_runtime):
    fake_runtime.up_error = KeyboardInterrupt()

    result = build(runner, "stopped")

    assert result.exit_code == 130
    assert (in_tmp / "stopped/manage.py").is_file()
    assert "cd stopped && quickscale up" in result.stderr


def test_build_with_the_real_template(runner, in_tmp, monkeypatch):
    monkeypatch.undo()  # back to the shipped template
    monkeypatch.chdir(in_tmp)
    real = template_copy.template_root()
    if not (real / "manage.py").is_file() or not (real / ".env.example").is_file():
        pytest.skip("the project template is not complete yet")

    result = build(runner, "realproject", "--no-start")

    assert result.exit_code == 0, result.output
    root = in_tmp / "realproject"
    env = dotenv_values(root / ".env")
    assert env["PROJECT_NAME"] == "realproject"
    assert env["SECRET_KEY"] != "!!!SET SECRET_KEY!!!"
    # The webhook secret fills the example's own line, and the project's production
    # check (the one rule for a real-looking secret) accepts it.
    assert (root / ".env").read_text().count("STRIPE_WEBHOOK_SECRET=") == 1
    judged = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from core.checks import webhook_secret_problem;"
            "print(webhook_secret_problem(sys.argv[1]))",
            env["STRIPE_WEBHOOK_SECRET"] or "",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (judged.returncode, judged.stdout.strip()) == (0, "None"), judged.stderr
    manifest = json.loads((root / ".quickscale/manifest.json").read_text())
    assert (root / "core/settings.py").is_file()
    assert all(
        file_sha256(root / relative) == digest for relative, digest in manifest["files"].items()
    )
    assert not list(root.rglob("__pycache__"))
