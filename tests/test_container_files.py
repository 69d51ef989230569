"""The generated project's container files, checked by their validators (no engine runs here).

The compose file is validated against the compose specification's JSON schema
and cross-checked (variables documented, references resolved); the Dockerfile
goes through hadolint; the entrypoint through `bash -n`, shellcheck, and runs
against stand-in `python` and `sleep` executables to show what it does.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from ruamel.yaml import YAML  # ships with check-jsonschema

from quickscale.runtime.docker import ENV_FILE_SERVICES, compose_override

TEMPLATE = Path(__file__).resolve().parents[1] / "quickscale" / "project_templates"
COMPOSE = TEMPLATE / "docker-compose.yml"
DOCKERFILE = TEMPLATE / "Dockerfile"
ENTRYPOINT = TEMPLATE / "entrypoint.sh"
BIN = Path(sys.executable).parent
# ${NAME...} interpolated by compose; `$${NAME}` is an escaped, literal `${NAME}`.
VARIABLE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")


def tool(name: str) -> str:
    """A validator installed into the dev venv by requirements-dev.txt (or on PATH)."""
    found = BIN / name
    if found.exists():
        return str(found)
    on_path = shutil.which(name)
    assert on_path, f"{name} is missing: install requirements-dev.txt"
    return on_path


def compose() -> dict:
    return YAML(typ="safe").load(COMPOSE.read_text())


def strings(node: object) -> list[str]:
    """Every key and value of the parsed compose file (comments excluded)."""
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (*strings(key), *strings(value))]
    if isinstance(node, list):
        return [text for item in node for text in strings(item)]
    return [str(node)]


def interpolations() -> list[re.Match[str]]:
    return [match for text in strings(compose()) for match in VARIABLE.finditer(text)]


def documented_variables() -> set[str]:
    names = set()
    for line in (TEMPLATE / ".env.example").read_text().splitlines():
        match = re.match(r"\s*#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


# docker-compose.yml


def test_compose_file_matches_the_compose_specification():
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_compose_variable_is_documented_in_env_example():
    used = {match["name"] for match in interpolations()}
    assert used, "the compose file takes its settings from .env"
    assert used - documented_variables() == set()


def test_compose_variables_have_defaults_or_a_clear_error():
    for match in interpolations():
        assert match["rest"].startswith((":-", ":?")), match.group(0)


def test_depends_on_targets_and_named_volumes_exist():
    spec = compose()
    services = spec["services"]
    declared = set(spec.get("volumes") or {})
    for name, service in services.items():
        for target in service.get("depends_on") or {}:
            assert target in services, f"{name} depends on unknown service {target}"
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, f"{name} mounts undeclared volume {source}"


def test_web_and_worker_wait_for_a_healthy_database():
    services = compose()["services"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])


def test_the_worker_is_the_web_servers_image_in_its_worker_role():
    # Same build, settings and volumes (it writes job results and mail the web side
    # reads); no port, and no HTTP health check (the image's asks a web server).
    web, worker = compose()["services"]["web"], compose()["services"]["worker"]
    for key in ("build", "env_file", "environment", "volumes", "restart"):
        assert worker[key] == web[key], key
    assert (web["command"], worker["command"]) == (["web"], ["worker"])
    assert "ports" not in worker
    assert worker["healthcheck"] == {"disable": True}


def test_data_media_and_logs_live_in_named_volumes():
    spec = compose()
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for service in spec["services"].values()
        for volume in service.get("volumes") or []
    }
    mail_log = spec["services"]["web"]["environment"]["MAIL_LOG_PATH"]
    assert mounts["/var/lib/postgresql/data"] in spec["volumes"]
    assert mounts["/app/.quickscale/media"] in spec["volumes"]
    assert Path(mail_log).parent.as_posix() in mounts


def test_the_docker_runtime_knows_which_services_take_env_file_and_what_they_set():
    # The runtime's environment override names these services and leaves alone the
    # variables the compose file sets for them itself (their database, their paths).
    taking_env_file = {
        name: set(service.get("environment") or {})
        for name, service in compose()["services"].items()
        if service.get("env_file")
    }
    assert taking_env_file == {name: set(own) for name, own in ENV_FILE_SERVICES.items()}


def test_the_environment_override_matches_the_compose_specification(tmp_path):
    # Values as a shell may hold them: compose must read each back exactly.
    values = {
        "DEBUG": "False",
        "SECRET_KEY": "pa$word-${HOME}-$$",
        "SITE_NAME": 'say "hi" \\ bye',
        "NOTE": "two\nlines\tand a tab",
        "WIDE": "caf\u00e9 \U0001f600 nbsp\u00a0",
        "ODD": "del\x7f nel\x85 line-separator\u2028 end",
    }
    override = tmp_path / "compose.env.yml"
    override.write_text(compose_override(values) or "", encoding="utf-8")

    done = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
            str(override),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    for name in ENV_FILE_SERVICES:
        environment = YAML(typ="safe").load(override.read_text())["services"][name]["environment"]
        # Compose reads `$$` as a literal `$`.
        assert {key: value.replace("$$", "$") for key, value in environment.items()} == values


def test_every_service_has_memory_limits_and_reservations():
    for service in compose()["services"].values():
        resources = service["deploy"]["resources"]
        assert resources["limits"]["memory"]
        assert resources["reservations"]["memory"]


# Dockerfile


def test_dockerfile_passes_hadolint_without_warnings():
    done = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            rows.append((keyword.upper(), rest.strip()))
    return rows


def final_stage() -> list[tuple[str, str]]:
    rows = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(rows) if keyword == "FROM")
    return rows[last_from:]


def test_image_runs_as_a_non_root_user_in_the_web_role_by_default():
    stage = dict(final_stage())
    assert stage["FROM"].startswith("python:3.11-slim")
    assert stage["USER"] not in {"root", "0", "0:0"}
    assert json.loads(stage["CMD"]) == ["web"]  # entrypoint.sh: bootstrap, then uvicorn
    assert "WEB_CONCURRENCY=" in stage["ENV"]  # uvicorn's worker count


ECHO_APP = """\
import json


async def app(scope, receive, send):
    body = json.dumps({"client": scope["client"][0], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


def test_image_server_leaves_proxy_headers_to_django(tmp_path, container):
    # The web role's own command, serving an app that echoes what the server passed on.
    # Django alone reads X-Forwarded-For/-Proto (TRUSTED_PROXY_COUNT and
    # SECURE_PROXY_SSL_HEADER); the server must not rewrite the client or scheme.
    done, calls = container("web")
    assert done.returncode == 0, done.stderr
    command = shlex.split(calls[-1])
    assert command[:2] == ["uvicorn", "core.asgi:application"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command[0:2] = [tool("uvicorn"), "echo_app:app"]
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    (tmp_path / "echo_app.py").write_text(ECHO_APP)
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**os.environ, "WEB_CONCURRENCY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/",
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 30
        while True:
            try:
                with opener.open(request, timeout=5) as response:
                    seen = json.loads(response.read())
                break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
    finally:
        server.terminate()
        server.communicate(timeout=10)
    assert seen == {"client": "127.0.0.1", "scheme": "http"}


def test_image_health_check_needs_no_curl():
    stage = dict(final_stage())
    assert "/health/" in stage["HEALTHCHECK"]
    assert "python" in stage["HEALTHCHECK"]
    assert "curl" not in stage["HEALTHCHECK"]


def test_dockerignore_keeps_secrets_and_state_out_of_the_image():
    ignored = (TEMPLATE / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", ".quickscale", ".git"):
        assert entry in ignored


# entrypoint.sh


def test_entrypoint_passes_bash_syntax_check_and_shellcheck():
    assert subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=False).returncode == 0
    done = subprocess.run(
        [tool("shellcheck"), str(ENTRYPOINT)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout


def test_entrypoint_is_executable():
    assert os.access(ENTRYPOINT, os.X_OK)


@pytest.fixture
def container(tmp_path, monkeypatch):
    """Stand-in `python`, `sleep` and `uvicorn` on PATH that record their calls.

    With REAL_PYTHON set, every `python` call but the database probe runs that
    interpreter, so the project's own start-up code decides.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    # `python -` is the database probe: it fails DB_FAILS times, then succeeds.
    # `python manage.py migrate --check` finds MIGRATIONS_PENDING runs unapplied.
    (bin_dir / "python").write_text(
        "#!/usr/bin/env bash\n"
        'printf "python %s\\n" "$*" >> "$CALLS"\n'
        'if [[ "${1:-}" == "-" ]]; then\n'
        "  cat >/dev/null\n"
        '  tries=$(grep -c "^python -$" "$CALLS")\n'
        '  if (( tries <= ${DB_FAILS:-0} )); then echo "db down" >&2; exit 1; fi\n'
        "  exit 0\n"
        "fi\n"
        'if [[ "$*" == "manage.py migrate --check" ]]; then\n'
        '  tries=$(grep -c "^python manage.py migrate --check$" "$CALLS")\n'
        '  if (( tries <= ${MIGRATIONS_PENDING:-0} )); then echo "unapplied"; exit 1; fi\n'
        "  exit 0\n"
        "fi\n"
        'if [[ -n "${REAL_PYTHON:-}" ]]; then exec "$REAL_PYTHON" "$@"; fi\n'
        "exit 0\n"
    )
    (bin_dir / "sleep").write_text('#!/usr/bin/env bash\nprintf "sleep %s\\n" "$*" >> "$CALLS"\n')
    (bin_dir / "uvicorn").write_text(
        '#!/usr/bin/env bash\nprintf "uvicorn %s\\n" "$*" >> "$CALLS"\n'
    )
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CALLS", str(calls))
    for key, value in {"DB_USER": "u", "DB_PASSWORD": "p", "DB_NAME": "n"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MAIL_LOG_PATH", str(tmp_path / "logs" / "mail.log"))
    monkeypatch.delenv("QUICKSCALE_SKIP_BOOTSTRAP", raising=False)
    for knob in ("DB_FAILS", "MIGRATIONS_PENDING", "REAL_PYTHON"):
        monkeypatch.delenv(knob, raising=False)

    def run(*command: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        done = subprocess.run(
            [str(ENTRYPOINT), *command], capture_output=True, text=True, check=False
        )
        recorded = calls.read_text().splitlines() if calls.exists() else []
        return done, recorded

    return run


def test_entrypoint_waits_for_the_database_bootstraps_then_execs_the_command(
    container, monkeypatch, tmp_path
):
    monkeypatch.setenv("DB_FAILS", "2")

    done, calls = container("echo", "server started")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "server started\n"
    assert calls == [
        "python -",
        "sleep 2",
        "python -",
        "sleep 2",
        "python -",
        "python manage.py bootstrap --skip-collectstatic",
    ]
    assert (tmp_path / "logs" / "mail.log").is_file()


def test_entrypoint_gives_up_after_ten_tries(container, monkeypatch):
    monkeypatch.setenv("DB_FAILS", "99")

    done, calls = container("echo", "never")

    assert done.returncode == 1
    assert calls.count("python -") == 10
    assert "did not answer after 10 tries" in done.stderr
    assert "never" not in done.stdout


@pytest.mark.parametrize("missing", ["DB_USER", "DB_PASSWORD", "DB_NAME"])
def test_entrypoint_refuses_to_start_without_database_settings(container, monkeypatch, missing):
    monkeypatch.delenv(missing)

    done, calls = container("echo", "never")

    assert done.returncode == 1
    assert f"missing required variable(s): {missing}" in done.stderr
    assert calls == []


def test_entrypoint_one_off_commands_can_skip_the_bootstrap(container, monkeypatch):
    monkeypatch.setenv("QUICKSCALE_SKIP_BOOTSTRAP", "1")

    done, calls = container("python", "manage.py", "migrate")

    assert done.returncode == 0
    assert calls == ["python -", "python manage.py migrate"]


def test_entrypoint_fails_with_the_reason_when_production_refuses_to_start(container, monkeypatch):
    # Production with Stripe on and the public placeholder as webhook secret: the
    # project's settings refuse, so bootstrap fails and the server never starts.
    monkeypatch.setenv("REAL_PYTHON", sys.executable)
    monkeypatch.chdir(TEMPLATE)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    production = {
        "IS_PRODUCTION": "True",
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "example.com",
        "ACCOUNT_EMAIL_VERIFICATION": "mandatory",
        "STRIPE_ENABLED": "True",
        "STRIPE_WEBHOOK_SECRET": "whsec_dummy",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
    }
    for key, value in production.items():
        monkeypatch.setenv(key, value)

    done, calls = container("echo", "server started")

    assert done.returncode != 0
    assert "Refusing to start with IS_PRODUCTION on: STRIPE_WEBHOOK_SECRET" in done.stderr
    assert "server started" not in done.stdout
    assert calls == ["python -", "python manage.py bootstrap --skip-collectstatic"]


WEB_SERVER = "uvicorn core.asgi:application --host 0.0.0.0 --port 8000 --no-proxy-headers"


@pytest.mark.parametrize("arguments", [("web",), ()], ids=["web", "no-role"])
def test_entrypoint_web_role_bootstraps_then_serves_with_uvicorn(container, arguments):
    done, calls = container(*arguments)

    assert done.returncode == 0, done.stderr
    assert calls == ["python -", "python manage.py bootstrap --skip-collectstatic", WEB_SERVER]


def test_entrypoint_worker_role_waits_for_the_migrations_then_runs_the_worker(
    container, monkeypatch
):
    # The web container's bootstrap migrates; the worker never runs a second bootstrap.
    monkeypatch.setenv("MIGRATIONS_PENDING", "2")

    done, calls = container("worker")

    assert done.returncode == 0, done.stderr
    check = "python manage.py migrate --check"
    assert calls == [
        "python -",
        check,
        "sleep 2",
        check,
        "sleep 2",
        check,
        "python manage.py worker",
    ]
    assert "waiting for the web container to migrate the database (try 2/90)" in done.stderr


def test_entrypoint_worker_role_gives_up_when_the_database_is_never_migrated(
    container, monkeypatch
):
    monkeypatch.setenv("MIGRATIONS_PENDING", "999")

    done, calls = container("worker")

    assert done.returncode == 1
    assert calls.count("python manage.py migrate --check") == 90
    assert "python manage.py worker" not in calls
    assert "still not migrated after 90 tries" in done.stderr
    assert "quickscale logs web" in done.stderr
