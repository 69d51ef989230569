"""The local runtime against a real built project: the shared contract, then local specifics."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from contract import ContractSubject, RuntimeContract, http_status, rows
from fixtures_project import ProjectFactory, free_port
from typer.testing import CliRunner

from quickscale.cli import app
from quickscale.errors import QuickScaleError
from quickscale.project import RUNTIME_DATABASE_URL, Project
from quickscale.runtime import venv
from quickscale.runtime.base import ServiceState, UpResult
from quickscale.runtime.embedded_db import START_FAILED, EmbeddedDatabase
from quickscale.runtime.local import LocalRuntime
from quickscale.runtime.logs import error_tail
from quickscale.runtime.ports import fallback_enabled, is_port_free, next_free_port
from quickscale.runtime.select import get_runtime


def data_exists(runtime: LocalRuntime) -> bool:
    db = runtime.db
    return db.data_dir.exists() or (db.as_root and db.base_dir.exists())


@pytest.fixture(scope="class")
def contract_subject(project_factory: ProjectFactory) -> Iterator[ContractSubject]:
    runtime = LocalRuntime(project_factory("contract"))
    yield ContractSubject(runtime=runtime, data_exists=lambda: data_exists(runtime))
    runtime.destroy()


class TestLocalRuntimeContract(RuntimeContract):
    """The shared runtime contract, against a real project, PostgreSQL and uvicorn."""


@pytest.fixture(scope="module")
def local_project(project_factory: ProjectFactory) -> Iterator[Project]:
    project = project_factory("local")
    yield project
    LocalRuntime(project).destroy()


@pytest.fixture
def stopped(local_project: Project) -> Project:
    LocalRuntime(local_project).down()
    return local_project


@contextmanager
def listening(port: int) -> Iterator[socket.socket]:
    """Something else listening on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield sock


def with_env(project: Project, **values: str) -> Project:
    return replace(project, env={**project.env, **values})


def wait_dead(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive")


# Ports.


def test_busy_port_without_fallback_is_a_clear_error_and_starts_nothing(stopped: Project) -> None:
    port = int(stopped.env["WEB_PORT"])
    runtime = LocalRuntime(with_env(stopped, WEB_PORT_ALTERNATIVE_FALLBACK="no"))
    with listening(port), pytest.raises(QuickScaleError) as error:
        runtime.up()
    assert str(error.value) == (
        f"Port {port} is already in use. Free it, set WEB_PORT in .env to a free port, "
        "or set WEB_PORT_ALTERNATIVE_FALLBACK=yes."
    )
    status = rows(runtime)
    assert status["web"].state == ServiceState.STOPPED
    assert status["db"].state == ServiceState.STOPPED
    assert not runtime.pid_file.exists()


def test_busy_port_with_fallback_uses_the_next_free_one_and_says_so(stopped: Project) -> None:
    port = int(stopped.env["WEB_PORT"])
    runtime = LocalRuntime(with_env(stopped, WEB_PORT_ALTERNATIVE_FALLBACK="Yes"))
    with listening(port):
        result = runtime.up()
        try:
            used = rows(runtime)["web"].port
            assert used is not None and used > port
            assert result.notes == (f"Port {port} is busy; using {used}",)
            assert http_status(f"http://127.0.0.1:{used}/health/") == 200
        finally:
            runtime.down()


@pytest.mark.parametrize("value", ["yes", "TRUE", "1", "on", "Enabled", "y", "t"])
def test_fallback_flag_accepts_the_spec_spellings(value: str | None) -> None:
    assert fallback_enabled(value)


@pytest.mark.parametrize("value", [None, "", "no", "false", "0", "off", "disabled", "maybe"])
def test_fallback_flag_is_off_otherwise(value: str | None) -> None:
    assert not fallback_enabled(value)


def test_next_free_port_skips_a_busy_port() -> None:
    port = next_free_port(31000)
    with listening(port):
        assert not is_port_free(port)
        assert next_free_port(port) > port


# Database.


def test_a_database_that_cannot_start_points_at_its_log(
    stopped: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = LocalRuntime(stopped)
    runtime.manage(["check"])  # make sure the cluster exists
    runtime.down()
    conf = runtime.db.data_dir / "postgresql.conf"
    original = conf.read_text()
    conf.write_text(original + "\nquickscale_bogus_setting = 1\n")
    try:
        with pytest.raises(QuickScaleError) as error:
            runtime.up()
        assert str(error.value) == START_FAILED
        assert "quickscale logs db" in str(error.value)
        assert rows(runtime)["web"].state == ServiceState.STOPPED
        capsys.readouterr()
        assert runtime.logs("db", follow=False, lines=50) == 0
        assert "quickscale_bogus_setting" in capsys.readouterr().out
    finally:
        conf.write_text(original)
    assert runtime.up().url
    runtime.down()


def test_a_pg_ctl_failure_is_reported_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess as sp

    from quickscale.runtime import embedded_db

    def failing(name: str) -> Callable[..., str]:
        def command(args: list[str], pgdata: Path | None = None, **kwargs: object) -> str:
            raise sp.CalledProcessError(1, [name, *args])

        return command

    db = EmbeddedDatabase(tmp_path)
    monkeypatch.setattr(embedded_db, "_command", failing)
    try:
        with pytest.raises(QuickScaleError, match="quickscale logs db"):
            db.start("app")
        assert "returned non-zero exit status 1" in db.log_path.read_text()
    finally:
        monkeypatch.undo()
        db.remove()


def test_uri_uses_the_socket_and_adds_a_non_default_port(tmp_path: Path) -> None:
    db = EmbeddedDatabase(tmp_path)
    assert db.uri("app") == f"postgresql://postgres@/app?host={db.socket_dir}"
    (db.data_dir).mkdir(parents=True)
    (db.data_dir / "postmaster.pid").write_text("1\n/x\n0\n5433\n/short\n\n\nready\n")
    assert db.uri("app") == "postgresql://postgres@/app?host=/short&port=5433"
    db.remove()


def test_a_long_data_path_moves_the_socket_under_tmp(tmp_path: Path) -> None:
    db = EmbeddedDatabase(tmp_path)
    db.data_dir = Path("/" + "x" * 120)
    assert db.socket_dir == Path("/tmp") / f"quickscale-{db.key}"


# Web process and pid file.


def test_a_killed_web_server_leaves_a_stale_pid_file_that_up_recovers_from(
    local_project: Project,
) -> None:
    runtime = LocalRuntime(local_project)
    runtime.up()
    pid = rows(runtime)["web"].pid
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)  # what a crash or `kill -9` leaves behind
    wait_dead(pid)
    assert runtime.pid_file.exists()
    assert rows(runtime)["web"].state == ServiceState.STOPPED
    result = runtime.up()
    assert not result.already_running
    assert http_status(result.url + "health/") == 200


def test_two_ups_at_once_start_one_web_server_that_down_stops(stopped: Project) -> None:
    results: list[UpResult | Exception] = []

    def start() -> None:
        try:
            results.append(LocalRuntime(stopped).up())
        except Exception as error:  # reported by the assertion below
            results.append(error)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    runtime = LocalRuntime(stopped)
    try:
        assert all(isinstance(result, UpResult) for result in results), results
        flags = sorted(result.already_running for result in results if isinstance(result, UpResult))
        assert flags == [False, True]
        web = rows(runtime)["web"]
        assert web.state == ServiceState.RUNNING and web.pid is not None
        assert http_status(f"http://127.0.0.1:{web.port}/health/") == 200
    finally:
        runtime.down()
    assert is_port_free(int(stopped.env["WEB_PORT"]))  # no untracked server left behind


def test_a_pid_file_naming_a_dead_process_is_cleaned(local_project: Project) -> None:
    runtime = LocalRuntime(local_project)
    runtime.down()
    dead = subprocess.Popen(["true"])
    dead.wait()
    runtime.pid_file.write_text(f'{{"pid": {dead.pid}, "port": 1}}\n')
    result = runtime.up()
    assert not result.already_running
    assert http_status(result.url + "health/") == 200


def _quickscale_command() -> str:
    executable = Path(sys.executable).with_name("quickscale")
    return str(executable) if executable.exists() else "quickscale"


@pytest.mark.parametrize(
    "phase", ["quickscale: manage.py bootstrap", "quickscale: web server on port"]
)
def test_up_interrupted_with_ctrl_c_stops_cleanly_and_the_next_up_recovers(
    stopped: Project, phase: str
) -> None:
    runtime = LocalRuntime(stopped)
    port = int(stopped.env["WEB_PORT"])
    runtime.logs_dir.mkdir(parents=True, exist_ok=True)
    runtime.web_log.touch()
    offset = runtime.web_log.stat().st_size
    # A terminal's Ctrl-C sends SIGINT to the whole foreground process group: the
    # `quickscale up` process and the bootstrap it runs. Its own session stands in for
    # the terminal's group; SIGINT is restored to the default, since a background
    # job (this suite in CI) inherits it ignored.
    up = subprocess.Popen(
        [_quickscale_command(), "up"],
        cwd=stopped.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while phase not in runtime.web_log.read_text(errors="replace")[offset:]:
            assert up.poll() is None, f"up ended before {phase!r}: {up.communicate()}"
            assert time.monotonic() < deadline, f"up never reached {phase!r}"
            time.sleep(0.02)
        time.sleep(0.2)  # inside that step, not at its first line
        os.killpg(up.pid, signal.SIGINT)
        out, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    assert up.returncode == 130, (out, err)
    assert err.strip().splitlines() == ["Error: Interrupted. Run the command again when ready."]
    assert "Traceback" not in out + err
    assert rows(runtime)["web"].state == ServiceState.STOPPED
    assert not runtime.pid_file.exists()
    assert is_port_free(port)

    result = runtime.up()
    try:
        assert not result.already_running
        assert result.url == f"http://localhost:{port}/"
        assert http_status(result.url + "health/") == 200
    finally:
        runtime.down()


def test_error_tails_keep_the_exception_of_a_traceback_not_its_frames() -> None:
    log = [
        "Operations to perform:",
        "Traceback (most recent call last):",
        '  File "manage.py", line 3, in <module>',
        "    main()",
        "KeyError: 'first'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "core/settings.py", line 53, in <module>',
        "django.core.exceptions.ImproperlyConfigured: DEBUG is on; set DEBUG=False.",
    ]
    assert error_tail(log).splitlines() == [
        "Operations to perform:",
        "KeyError: 'first'",
        "django.core.exceptions.ImproperlyConfigured: DEBUG is on; set DEBUG=False.",
    ]
    assert error_tail(f"line {n}\n" for n in range(100)).splitlines()[0] == "line 80"


def test_a_failing_bootstrap_starts_no_web_server_and_says_what_to_do(stopped: Project) -> None:
    # Production settings refuse DEBUG on: `manage.py bootstrap` exits non-zero.
    runtime = LocalRuntime(with_env(stopped, IS_PRODUCTION="True", DEBUG="True"))
    with pytest.raises(QuickScaleError) as error:
        runtime.up()
    first, *tail = str(error.value).splitlines()
    assert first.startswith("`manage.py bootstrap` failed (exit code ")
    assert "run 'quickscale up' again" in first and "quickscale logs web" in first
    assert any("DEBUG is on" in line for line in tail), tail
    assert not [line for line in tail if "Traceback" in line or line.startswith("  File ")]
    assert rows(runtime)["web"].state == ServiceState.STOPPED
    assert not runtime.pid_file.exists()
    assert is_port_free(int(stopped.env["WEB_PORT"]))
    runtime.down()


def test_manage_on_a_stopped_project_starts_only_the_database(stopped: Project) -> None:
    runtime = LocalRuntime(stopped)
    assert rows(runtime)["db"].state == ServiceState.STOPPED
    assert runtime.manage(["check"]) == 0
    status = rows(runtime)
    assert status["db"].state == ServiceState.RUNNING
    assert status["db"].pid is not None
    assert status["web"].state == ServiceState.STOPPED
    assert is_port_free(int(stopped.env["WEB_PORT"]))
    runtime.down()
    assert rows(runtime)["db"].state == ServiceState.STOPPED


# Logs.


def test_logs_prints_the_last_lines(stopped: Project, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = LocalRuntime(stopped)
    runtime.web_log.parent.mkdir(parents=True, exist_ok=True)
    with open(runtime.web_log, "a") as log:
        log.write("first\nsecond\nthird\n")
    capsys.readouterr()
    assert runtime.logs("web", follow=False, lines=2) == 0
    assert capsys.readouterr().out == "second\nthird\n"


def test_a_missing_log_says_so(stopped: Project, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = LocalRuntime(with_env(stopped, MAIL_LOG_PATH=".quickscale/logs/none.log"))
    assert runtime.logs("mail", follow=False, lines=10) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "none.log does not exist" in captured.err


def test_logs_follow_prints_appended_lines_until_interrupted(stopped: Project) -> None:
    mail_log = stopped.root / ".quickscale" / "logs" / "mail.log"
    mail_log.parent.mkdir(parents=True, exist_ok=True)
    mail_log.write_text("old mail\n")
    code = (
        "import signal, sys\n"
        # A terminal delivers Ctrl-C as KeyboardInterrupt; restore that even when this
        # suite runs from a background job, where SIGINT is inherited as ignored.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from quickscale.project import load_project\n"
        "from quickscale.runtime.local import LocalRuntime\n"
        "sys.exit(LocalRuntime(load_project('logs')).logs('mail', follow=True, lines=5))\n"
    )
    follower = subprocess.Popen(
        [sys.executable, "-c", code], cwd=stopped.root, stdout=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(30, follower.kill)  # a failure must not hang the suite
    watchdog.start()
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "old mail\n"
        with open(mail_log, "a") as log:
            log.write("new mail\n")
        assert follower.stdout.readline() == "new mail\n"
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0
    finally:
        watchdog.cancel()
        follower.kill()


# Venv.


def test_a_failed_install_points_at_its_log_and_is_redone_next_time(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("./no-such-package-dir\n")
    with pytest.raises(QuickScaleError) as error:
        venv.ensure_venv(tmp_path)
    log = venv.install_log_path(tmp_path)
    assert str(log) in str(error.value)
    assert log.read_text()
    assert not venv.hash_path(tmp_path).exists()
    assert not venv.is_current(tmp_path)


def test_installed_packages_get_their_bytecode_in_the_background(shared_venv: Path) -> None:
    # Otherwise, wherever imports cannot write bytecode, every start of bootstrap
    # and the server recompiles Django and the rest. Django's GIS package is
    # imported by nothing in the project, so its bytecode can only come from the
    # compile that the install starts.
    (gis,) = shared_venv.glob("lib/python3*/site-packages/django/contrib/gis")
    deadline = time.monotonic() + 120
    while not list((gis / "__pycache__").glob("__init__.cpython-*.pyc")):
        assert time.monotonic() < deadline, "no bytecode two minutes after the install"
        time.sleep(0.5)


def _fake_compile(root: Path) -> subprocess.Popen[bytes]:
    """A long 'compileall' in its own session, recorded where the install records one."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "compileall"],
        start_new_session=True,
    )
    pid_file = venv.compile_pid_path(root)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{process.pid}\n")
    return process


def test_destroy_stops_a_bytecode_compile_that_still_runs(project_factory: ProjectFactory) -> None:
    project = project_factory("compiling")
    compile_process = _fake_compile(project.root)
    try:
        assert venv._is_our_compile(compile_process.pid)
        LocalRuntime(project).destroy()
        assert compile_process.wait(timeout=10) == -signal.SIGKILL
        assert not venv.compile_pid_path(project.root).exists()
    finally:
        compile_process.kill()


def test_stopping_the_compile_leaves_other_processes_alone(tmp_path: Path) -> None:
    # The recorded pid may belong to something else by now (an ended compile, a
    # reused pid): only a compileall leading its own group is stopped.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = venv.compile_pid_path(tmp_path)
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(f"{other.pid}\n")
        venv.stop_background_compile(tmp_path)
        assert other.poll() is None
        assert not pid_file.exists()
    finally:
        other.kill()
        other.wait()


def test_an_unchanged_venv_is_not_reinstalled(
    local_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert venv.is_current(local_project.root)

    def no_install(*args: object, **kwargs: object) -> None:
        pytest.fail("reinstalled")

    monkeypatch.setattr(subprocess, "run", no_install)
    venv.ensure_venv(local_project.root)


def test_changed_requirements_make_the_venv_stale(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("a==1\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    venv.hash_path(tmp_path).parent.mkdir(parents=True)
    venv.hash_path(tmp_path).write_text(venv.requirements_hash(tmp_path))
    assert venv.is_current(tmp_path)
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\nb==2\n")
    assert not venv.is_current(tmp_path)


# Runtime selection.


def test_get_runtime_picks_the_local_runtime(tmp_path: Path) -> None:
    assert isinstance(get_runtime(Project(root=tmp_path, env={})), LocalRuntime)
    project = Project(root=tmp_path, env={"QUICKSCALE_RUNTIME": "local"})
    assert isinstance(get_runtime(project), LocalRuntime)


def test_get_runtime_refuses_an_unknown_runtime(tmp_path: Path) -> None:
    project = Project(root=tmp_path, env={"QUICKSCALE_RUNTIME": "podman"})
    with pytest.raises(QuickScaleError, match=r"'podman'.*local, docker"):
        get_runtime(project)


def test_get_runtime_reads_the_environment_first_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUICKSCALE_RUNTIME", "podman")
    project = Project(root=tmp_path, env={"QUICKSCALE_RUNTIME": "local"})
    with pytest.raises(QuickScaleError, match=r"'podman' in the environment is not a runtime"):
        get_runtime(project)


# Shell.


def test_shell_runs_the_users_shell_in_the_project_with_its_env(
    stopped: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "seen"
    fake_shell = tmp_path / "fake-shell"
    fake_shell.write_text(
        "#!/bin/sh\n"
        f'{{ pwd; echo "$DATABASE_URL"; echo "$VIRTUAL_ENV"; echo "$PATH"; }} > {record}\n'
        "exit 7\n"
    )
    fake_shell.chmod(0o755)
    monkeypatch.setenv("SHELL", str(fake_shell))
    runtime = LocalRuntime(stopped)
    assert runtime.shell() == 7
    cwd, database_url, virtual_env, path = record.read_text().splitlines()
    assert Path(cwd).resolve() == stopped.root.resolve()
    assert database_url == runtime.db.uri(runtime.db_name)
    assert virtual_env == str(stopped.root.resolve() / ".venv")
    assert path.startswith(f"{virtual_env}/bin:")
    assert rows(runtime)["web"].state == ServiceState.STOPPED


# Reload and restart.

RELOAD_PROBE = """
from django.http import HttpResponse as _ProbeResponse

urlpatterns.insert(0, path("reload-probe/", lambda request: _ProbeResponse("probe {n}")))
"""


def _get(url: str) -> tuple[int | None, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return None, ""


def _eventually(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.1)


def _workers(reloader: int) -> list[int]:
    """The server processes uvicorn's reloader runs (not multiprocessing's resource tracker)."""
    found = []
    for child in psutil.Process(reloader).children():
        with suppress(psutil.NoSuchProcess):
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != "zombie":
                found.append(child.pid)
    return found


def _settled_worker(reloader: int) -> int:
    """The reloader's one worker, once a reload an earlier edit started is over."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        first = _workers(reloader)
        time.sleep(2.5)  # more than watchfiles' debounce and uvicorn's reload delay
        if len(first) == 1 and _workers(reloader) == first:
            return first[0]
    raise AssertionError("the server kept reloading")


@contextmanager
def edited(path: Path, change: Callable[[str], str]) -> Iterator[None]:
    original = path.read_text()
    path.write_text(change(original))
    try:
        yield
    finally:
        path.write_text(original)


def test_up_in_development_serves_a_python_edit_without_a_restart(local_project: Project) -> None:
    runtime = LocalRuntime(local_project)
    url = runtime.up().url
    web = rows(runtime)["web"]
    assert web.pid is not None and web.detail.endswith("(reloads on code changes)")
    urls = local_project.root / "core" / "urls.py"
    with edited(urls, lambda text: text + RELOAD_PROBE.format(n=1)):
        _eventually(lambda: _get(url + "reload-probe/") == (200, "probe 1"), "the edit served")
        # The same server, as `ps` shows it and `down` stops it, reloaded its worker.
        assert rows(runtime)["web"].pid == web.pid
        with edited(urls, lambda text: text.replace("probe 1", "probe 2")):
            _eventually(lambda: _get(url + "reload-probe/") == (200, "probe 2"), "a 2nd edit")


def test_up_in_development_serves_a_template_edit(local_project: Project) -> None:
    runtime = LocalRuntime(local_project)
    url = runtime.up().url
    page = local_project.root / "templates" / "public" / "index.html"
    marker = "<p>edited-while-running</p>"
    assert marker not in _get(url)[1]
    block = "{% block content %}"
    with edited(page, lambda text: text.replace(block, block + marker, 1)):
        _eventually(lambda: marker in _get(url)[1], "the edited template served")


def test_files_outside_the_code_folders_do_not_reload_the_server(local_project: Project) -> None:
    # The venv's bytecode compile, the logs and the database under .quickscale/,
    # and collected static files change while the server runs.
    runtime = LocalRuntime(local_project)
    runtime.up()
    reloader = rows(runtime)["web"].pid
    assert reloader is not None
    worker = _settled_worker(reloader)
    root = local_project.root
    (root / "staticfiles").mkdir(exist_ok=True)
    quiet = [root / ".quickscale" / "probe.py", root / "staticfiles" / "probe.html"]
    for path in quiet:
        path.write_text("x = 1\n")
    time.sleep(2.5)  # more than watchfiles' debounce and uvicorn's reload delay
    assert _workers(reloader) == [worker]
    # While a file in a code folder does.
    watched = root / "common" / "reload_probe.py"
    watched.write_text("x = 1\n")
    try:
        _eventually(lambda: _workers(reloader) not in ([], [worker]), "a new worker")
    finally:
        watched.unlink()
        for path in quiet:
            path.unlink()


def test_production_settings_start_the_server_without_reload(local_project: Project) -> None:
    assert LocalRuntime(local_project).reload
    for value in ("True", "yes", "ON", "nonsense"):
        runtime = LocalRuntime(with_env(local_project, IS_PRODUCTION=value))
        assert not runtime.reload
        assert "--reload" not in runtime._web_command(8000, reload=runtime.reload)


def test_down_stops_the_reloader_and_its_worker(local_project: Project) -> None:
    runtime = LocalRuntime(local_project)
    runtime.up()
    reloader = rows(runtime)["web"].pid
    assert reloader is not None
    _eventually(lambda: len(_workers(reloader)) == 1, "one worker")
    group = [reloader, *_workers(reloader)]
    runtime.down()
    for pid in group:
        wait_dead(pid)
    assert is_port_free(int(local_project.env["WEB_PORT"]))


def test_a_worker_that_cannot_start_fails_up_at_once_and_leaves_nothing(stopped: Project) -> None:
    # uvicorn's reloader outlives such a worker, waiting for a fix; `up` must not wait.
    runtime = LocalRuntime(stopped)
    asgi = stopped.root / "core" / "asgi.py"
    with edited(asgi, lambda text: text + '\nraise RuntimeError("broken on purpose")\n'):
        started = time.monotonic()
        with pytest.raises(QuickScaleError) as error:
            runtime.up()
        assert time.monotonic() - started < 30
    assert str(error.value).startswith("The web server's worker exited before answering")
    assert "RuntimeError: broken on purpose" in str(error.value)
    assert rows(runtime)["web"].state == ServiceState.STOPPED
    assert not runtime.pid_file.exists()
    assert is_port_free(int(stopped.env["WEB_PORT"]))
    runtime.down()


def test_restart_starts_a_new_web_server_and_keeps_the_database(local_project: Project) -> None:
    runtime = LocalRuntime(local_project)
    runtime.up()
    before = rows(runtime)
    result = runtime.restart()
    after = rows(runtime)
    assert before["web"].pid is not None
    wait_dead(before["web"].pid)
    assert after["web"].state == ServiceState.RUNNING
    assert after["web"].pid not in (None, before["web"].pid)
    assert after["db"].pid == before["db"].pid
    assert (result.already_running, result.notes) == (False, ())
    assert http_status(result.url + "health/") == 200


def test_restart_of_a_stopped_project_starts_it_and_says_so(stopped: Project) -> None:
    runtime = LocalRuntime(stopped)
    result = runtime.restart()
    try:
        assert result.notes == ("It was not running; started it.",)
        assert http_status(result.url + "health/") == 200
    finally:
        runtime.down()


GRANT_AND_KEY = (
    "from api.services import api_key_create\n"
    "from credits import ledger\n"
    "from users.models import CustomUser\n"
    "user = CustomUser.objects.get(email='user@test.com')\n"
    "ledger.grant(user, 10, source='admin', reference='generated-service-test')\n"
    "print('key:', api_key_create(user, name='test')[1])\n"
)


def test_a_generated_service_is_live_on_the_reloading_server_without_a_restart(
    local_project: Project, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    runtime = LocalRuntime(local_project)
    url = runtime.up().url
    pid = rows(runtime)["web"].pid
    capfd.readouterr()
    assert runtime.manage(["shell", "-c", GRANT_AND_KEY]) == 0
    key = next(line for line in capfd.readouterr().out.splitlines() if line.startswith("key:"))
    monkeypatch.chdir(local_project.root)

    done = CliRunner().invoke(app, ["generate-service", "late_arrival", "--credit-cost", "1"])

    assert done.exit_code == 0, done.output
    assert "the service is live in a few seconds" in done.output
    request = urllib.request.Request(
        url + "api/services/late_arrival/run",
        data=json.dumps({"input": {"text": "Hello there."}}).encode(),
        headers={"Authorization": f"Bearer {key.split()[1]}", "Content-Type": "application/json"},
    )

    def served() -> bool:
        status, body = _post(request)
        return status == 200 and json.loads(body)["data"]["result"]["echo"] == "Hello there."

    _eventually(served, "the new service answering")
    assert rows(runtime)["web"].pid == pid  # nobody restarted the server


def _post(request: urllib.request.Request) -> tuple[int | None, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return None, ""


# Database outage while the web server runs.


def test_up_with_the_database_down_starts_it_and_keeps_the_web_server(
    local_project: Project,
) -> None:
    runtime = LocalRuntime(local_project)
    url = runtime.up().url
    pid = rows(runtime)["web"].pid
    runtime.db.stop()
    assert http_status(url + "health/") == 503

    result = runtime.up()

    assert result.already_running
    assert result.notes == (
        "The database was stopped; started it again (the web server kept running).",
    )
    status = rows(runtime)
    assert status["web"].pid == pid
    assert status["db"].state == ServiceState.RUNNING
    assert http_status(url + "health/") == 200


# Proxy headers: Django alone reads them, as TRUSTED_PROXY_COUNT and SECURE_PROXY_SSL_HEADER say.


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        _NoRedirects(),
    )


def _failed_sign_in(base: str, email: str, headers: dict[str, str]) -> None:
    """Sign in with a wrong password (the server records the attempt's client IP)."""
    opener = _opener()
    with opener.open(base + "accounts/login/", timeout=30) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "no CSRF token in the login form"
    form = {"login": email, "password": "wrong-password", "csrfmiddlewaretoken": token.group(1)}
    request = urllib.request.Request(
        base + "accounts/login/",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Referer": base + "accounts/login/", **headers},
    )
    with opener.open(request, timeout=30) as response:
        assert response.status == 200  # the form again, with its error


def _failed_sign_in_ips(
    runtime: LocalRuntime, email: str, capfd: pytest.CaptureFixture[str]
) -> str:
    capfd.readouterr()
    code = (
        "from users.models import SecurityEvent\n"
        f"rows = SecurityEvent.objects.filter(kind='login_failed', email={email!r})\n"
        "print('ips:', sorted(str(ip) for ip in rows.values_list('ip_address', flat=True)))\n"
    )
    assert runtime.manage(["shell", "-c", code]) == 0
    return next(line for line in capfd.readouterr().out.splitlines() if line.startswith("ips:"))


def _hsts(url: str, headers: dict[str, str]) -> str | None:
    with _opener().open(urllib.request.Request(url, headers=headers), timeout=30) as response:
        value: str | None = response.headers.get("Strict-Transport-Security")
        return value


def test_the_web_server_takes_client_and_scheme_from_proxy_headers_only_as_settings_say(
    project_factory: ProjectFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    # HSTS is sent only on requests Django sees as https: it shows the scheme Django saw.
    project = project_factory("proxies", SECURE_HSTS_SECONDS="60")
    https = {"X-Forwarded-Proto": "https"}
    direct = LocalRuntime(project)  # TRUSTED_PROXY_COUNT=0, no SECURE_PROXY_SSL_HEADER
    try:
        url = direct.up().url
        assert _hsts(url + "health/", https) is None
        _failed_sign_in(url, "direct@example.com", {"X-Forwarded-For": "203.0.113.9"})
        assert _failed_sign_in_ips(direct, "direct@example.com", capfd) == "ips: ['127.0.0.1']"
        direct.down()

        behind_proxy = LocalRuntime(
            with_env(
                project,
                TRUSTED_PROXY_COUNT="1",
                SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
            )
        )
        url = behind_proxy.up().url
        assert _hsts(url + "health/", {"X-Forwarded-Proto": "http"}) is None
        assert _hsts(url + "health/", https) == "max-age=60"
        proxied = {"X-Forwarded-For": "198.51.100.1, 203.0.113.10"}  # client-sent, then proxy's
        _failed_sign_in(url, "proxied@example.com", proxied)
        ips = _failed_sign_in_ips(behind_proxy, "proxied@example.com", capfd)
        assert ips == "ips: ['203.0.113.10']"
    finally:
        direct.destroy()


# Environment precedence: a variable set in the process environment wins over .env,
# in every command and in Django (which loads .env with override=False), as in Compose.


def _quickscale(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_quickscale_command(), *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


PRINT_SITE_URL = "from django.conf import settings; print(settings.SITE_URL)"


def test_up_serves_on_the_port_the_environment_sets(stopped: Project) -> None:
    port = free_port()
    done = _quickscale("up", cwd=stopped.root, env={"WEB_PORT": str(port)})
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"running at http://localhost:{port}/" in done.stdout
        assert http_status(f"http://127.0.0.1:{port}/health/") == 200
        assert is_port_free(int(stopped.env["WEB_PORT"]))
    finally:
        LocalRuntime(stopped).down()


def test_manage_runs_django_with_the_environments_value(stopped: Project) -> None:
    port = free_port()
    done = _quickscale(
        "manage", "shell", "-c", PRINT_SITE_URL, cwd=stopped.root, env={"WEB_PORT": str(port)}
    )
    LocalRuntime(stopped).down()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == f"http://localhost:{port}"


def test_django_alone_reads_env_file_under_the_environment(stopped: Project) -> None:
    python = str(venv.venv_python(stopped.root))
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("WEB_PORT", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }

    def site_url(**extra: str) -> str:
        done = subprocess.run(
            [python, "manage.py", "shell", "-c", PRINT_SITE_URL],
            cwd=stopped.root,
            env={**environ, **extra},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()[-1]

    port = free_port()
    assert site_url() == f"http://localhost:{stopped.env['WEB_PORT']}"
    assert site_url(WEB_PORT=str(port)) == f"http://localhost:{port}"


def test_shell_exports_the_environments_value_and_the_embedded_database(
    stopped: Project, tmp_path: Path
) -> None:
    # Inside the shell, DATABASE_URL is the runtime's (its embedded cluster): a
    # quickscale command run there still sees the embedded database, not an external one.
    seen, nested = tmp_path / "seen", tmp_path / "ps"
    fake_shell = tmp_path / "fake-shell"
    fake_shell.write_text(
        f'#!/bin/sh\necho "$WEB_PORT" > {seen}\n{_quickscale_command()} ps > {nested} 2>&1\n'
    )
    fake_shell.chmod(0o755)
    done = _quickscale(
        "shell", cwd=stopped.root, env={"SHELL": str(fake_shell), "WEB_PORT": "4321"}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert seen.read_text() == "4321\n"
    db_row = next(line for line in nested.read_text().splitlines() if "│ db " in line)
    assert "stopped" in db_row and "external" not in db_row


def test_a_database_url_in_the_environment_is_an_external_database(
    stopped: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone@db.example.invalid:5433/theirs")
    runtime = LocalRuntime(stopped)
    db = rows(runtime)["db"]
    assert db.state == ServiceState.EXTERNAL
    assert db.detail == "postgresql://db.example.invalid:5433/theirs"
    # The one the runtime exported into a shell (of this or another project) is not.
    monkeypatch.setenv(RUNTIME_DATABASE_URL, "postgresql://someone@db.example.invalid:5433/theirs")
    assert rows(runtime)["db"].state == ServiceState.STOPPED


# The worker beside the web server.


def _worker_child(supervisor: int) -> int | None:
    """The worker process a reloading worker's supervisor runs (None while it has none)."""
    for child in psutil.Process(supervisor).children():
        with suppress(psutil.NoSuchProcess):
            if child.status() != "zombie" and "worker" in child.cmdline():
                return child.pid
    return None


def test_up_starts_a_worker_whose_log_logs_worker_reads(
    local_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = LocalRuntime(local_project)
    runtime.up()
    worker = rows(runtime)["worker"]
    assert worker.state == ServiceState.RUNNING and worker.pid is not None
    assert worker.detail == "TASK_BACKEND=database (reloads on code changes)"
    _eventually(lambda: "task worker started" in runtime.worker_log.read_text(), "a ready worker")
    capsys.readouterr()

    assert runtime.logs("worker", follow=False, lines=400) == 0

    shown = capsys.readouterr().out
    assert "quickscale: worker, TASK_BACKEND=database (reloads on code changes)" in shown
    assert "common.task_worker: task worker started" in shown


def test_a_crashed_worker_shows_in_ps_and_up_starts_it_again(local_project: Project) -> None:
    runtime = LocalRuntime(local_project)
    runtime.up()
    worker = rows(runtime)["worker"]
    assert worker.pid is not None
    os.killpg(worker.pid, signal.SIGKILL)  # what an out-of-memory kill leaves behind
    wait_dead(worker.pid)

    crashed = rows(runtime)["worker"]
    assert (crashed.state, crashed.pid) == (ServiceState.CRASHED, None)
    assert "quickscale logs worker" in crashed.detail
    assert rows(runtime)["web"].state == ServiceState.RUNNING

    result = runtime.up()

    assert result.already_running
    assert result.notes == ("The worker had crashed; started it.",)
    again = rows(runtime)["worker"]
    assert again.state == ServiceState.RUNNING
    assert again.pid not in (None, worker.pid)


def test_down_stops_the_worker_and_restart_restarts_it(local_project: Project) -> None:
    runtime = LocalRuntime(local_project)
    runtime.up()
    before = rows(runtime)["worker"].pid
    assert before is not None
    child = _worker_child(before)

    runtime.restart()

    after = rows(runtime)["worker"].pid
    wait_dead(before)
    if child is not None:
        wait_dead(child)
    assert after not in (None, before)
    runtime.down()
    wait_dead(after)
    assert rows(runtime)["worker"].state == ServiceState.STOPPED
    assert not runtime.worker_pid_file.exists()
    assert "task worker stopped" in runtime.worker_log.read_text()  # it stopped cleanly


def test_in_development_the_worker_restarts_on_a_code_change(local_project: Project) -> None:
    runtime = LocalRuntime(local_project)
    runtime.up()
    supervisor = rows(runtime)["worker"].pid
    assert supervisor is not None
    _eventually(lambda: _worker_child(supervisor) is not None, "the worker's process")
    first = _worker_child(supervisor)

    probe = local_project.root / "common" / "worker_reload_probe.py"
    probe.write_text("x = 1\n")
    try:
        _eventually(lambda: _worker_child(supervisor) not in (None, first), "a new worker")
    finally:
        probe.unlink()
    assert first is not None
    wait_dead(first)
    assert rows(runtime)["worker"].pid == supervisor  # the same worker, as ps shows it


def test_production_settings_start_the_worker_without_reload(local_project: Project) -> None:
    runtime = LocalRuntime(with_env(local_project, IS_PRODUCTION="True"))
    assert runtime._worker_command(reload=runtime.reload)[-2:] == ["manage.py", "worker"]


def test_a_worker_that_fails_after_a_slow_start_is_still_reported(stopped: Project) -> None:
    """Start-up checks can take seconds on a busy machine: `up` waits for the worker's
    ready line or its exit (up to WORKER_START_SECONDS), not a fixed few seconds."""
    runtime = LocalRuntime(stopped)
    settings = stopped.root / "core" / "settings.py"
    slow_then_broken = (
        "\nimport sys as _sys\nimport time as _time\n"
        'if "worker" in _sys.argv:\n    _time.sleep(5)\n'
        'PERIODIC_TASKS = {"credits.tasks.no_such_task": 60}\n'
    )
    with edited(settings, lambda text: text + slow_then_broken):
        result = runtime.up()
        try:
            (note,) = result.notes
            assert "PERIODIC_TASKS names 'credits.tasks.no_such_task'" in note
        finally:
            runtime.down()


def test_a_worker_that_cannot_start_is_reported_by_up_with_its_reason(stopped: Project) -> None:
    runtime = LocalRuntime(stopped)
    settings = stopped.root / "core" / "settings.py"
    broken = '\nPERIODIC_TASKS = {"credits.tasks.no_such_task": 60}\n'
    with edited(settings, lambda text: text + broken):
        result = runtime.up()
        try:
            (note,) = result.notes
            assert note.startswith(
                "The worker exited as it started, so background tasks do not run"
            )
            assert "PERIODIC_TASKS names 'credits.tasks.no_such_task'" in note
            assert http_status(result.url + "health/") == 200  # the site itself runs
            assert rows(runtime)["worker"].state == ServiceState.CRASHED
        finally:
            runtime.down()
