"""A stand-in `docker` executable for tests: records every call, answers like compose.

Copied by the `docker_standin` fixture to `tmp_path/bin/docker` (first on PATH).
Each call appends its argv (and the WEB_PORT/DB_PORT_EXTERNAL it was given,
and the values of `exec -e NAME` options, which compose takes from its own
environment) as one JSON line to $DOCKER_STANDIN_LOG. State (which services run, on which
port, whether volumes exist) lives in the JSON file $DOCKER_STANDIN_STATE, so
`up`, `ps`, `down` and `destroy` behave consistently.
`compose up` starts a tiny HTTP server on the published WEB_PORT (127.0.0.1)
that answers /health/ like the real web container behind the proxy service
(which publishes WEB_PORT; web publishes nothing); `down` stops it.

Knobs (environment variables):
  DOCKER_STANDIN_ENGINE=down       `docker info` fails like a stopped daemon
  DOCKER_STANDIN_FAIL=<subcommand> that compose subcommand (up, down, ps, ...)
                                   fails with DOCKER_STANDIN_STDERR, exit DOCKER_STANDIN_RC
  DOCKER_STANDIN_HEALTH=503        the web server's /health/ answers this status
  DOCKER_STANDIN_EXEC_RC=N         `compose exec|run` commands exit with N
  DOCKER_STANDIN_CRASHED=<service> `compose up` leaves that service restarting after
                                   exiting with code 1 (a worker that keeps failing)
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ENGINE_DOWN = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
    "Is the docker daemon running?"
)

SERVER = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

status = int(os.environ.get("DOCKER_STANDIN_HEALTH", "200"))

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        code = status if self.path.startswith("/health/") else 200
        body = json.dumps({"status": "ok" if code == 200 else "error",
                           "database": "ok" if code == 200 else "unavailable"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def load_state(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"services": {}, "volumes": False}


def save_state(path: Path, state: dict) -> None:
    path.write_text(json.dumps(state))


def stop_web(state: dict) -> None:
    web = state["services"].get("web")
    if web and web.get("server_pid"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(web["server_pid"], signal.SIGTERM)
        web["server_pid"] = None


def start_web(state: dict, port: int) -> None:
    stop_web(state)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    state["services"]["web"] = {"state": "running", "port": port, "server_pid": server.pid}


STATUS = {
    "running": "Up 5 seconds",
    "exited": "Exited (0) 2 seconds ago",
    "restarting": "Restarting (1) 3 seconds ago",
}


def ps_lines(state: dict, project: str) -> str:
    rows = []
    for service, target in (("web", None), ("worker", None), ("proxy", 8080), ("db", 5432)):
        info = state["services"].get(service)
        if not info:
            continue
        running = info["state"] == "running"
        publishers = []
        if target is not None:
            publishers.append(
                {
                    "URL": "0.0.0.0",
                    "TargetPort": target,
                    "PublishedPort": info["port"] if running else 0,
                    "Protocol": "tcp",
                }
            )
        rows.append(
            {
                "ID": f"{project}-{service}-id",
                "Name": f"{project}-{service}-1",
                "Service": service,
                "Project": project,
                "State": info["state"],
                "Status": STATUS[info["state"]],
                "ExitCode": 1 if info["state"] == "restarting" else 0,
                "Health": "",
                "Publishers": publishers,
            }
        )
    return "".join(json.dumps(row) + "\n" for row in rows)


MANAGE_COMMANDS = {"bootstrap", "check", "createsuperuser", "migrate", "shell"}


def run_in_container(command: list[str], state: dict) -> int:
    """Answer a command run in the web container; `manage.py shell -c` emulates a table."""
    if command[:2] == ["python", "manage.py"]:
        name = command[2] if len(command) > 2 else "help"
        if name not in MANAGE_COMMANDS:
            sys.stderr.write(f"Unknown command: {name!r}\n")
            return 1
        code = command[4] if command[3:4] == ["-c"] else ""
        if "INSERT" in code:
            state["rows"] = [*state.get("rows", []), "kept"]
        elif "SELECT" in code:
            return 0 if state.get("rows") else 3
    sys.stdout.write("ran in the web container: " + " ".join(command) + "\n")
    return int(os.environ.get("DOCKER_STANDIN_EXEC_RC", "0"))


def compose(args: list[str], state: dict) -> int:
    project = "quickscale"
    while args and args[0].startswith("-"):
        option = args.pop(0)
        value = args.pop(0)
        if option == "-p":
            project = value
    command, rest = args[0], args[1:]
    if os.environ.get("DOCKER_STANDIN_FAIL") == command:
        sys.stderr.write(os.environ.get("DOCKER_STANDIN_STDERR", "compose failed") + "\n")
        return int(os.environ.get("DOCKER_STANDIN_RC", "1"))
    services = state["services"]
    if command == "up":
        sys.stderr.write(" Container web  Started\n")
        port = int(os.environ.get("DB_PORT_EXTERNAL", 5432))
        services["db"] = {"state": "running", "port": port, "pid": os.getpid()}
        web_port = int(os.environ.get("WEB_PORT", 8000))
        start_web(state, web_port)
        services["proxy"] = {"state": "running", "port": web_port, "pid": os.getpid()}
        crashed = os.environ.get("DOCKER_STANDIN_CRASHED") == "worker"
        services["worker"] = {"state": "restarting" if crashed else "running", "pid": os.getpid()}
        state["volumes"] = True
        return 0
    if command == "ps":
        sys.stdout.write(ps_lines(state, project))
        return 0
    if command == "down":
        stop_web(state)
        if "-v" in rest:
            services.clear()
            state["volumes"] = False
            state.pop("rows", None)
        else:
            for info in services.values():
                info["state"] = "exited"
        return 0
    if command == "logs":
        service = rest[-1]
        sys.stdout.write(f"{service}-1  | a line of the {service} log\n")
        return 0
    if command == "exec":
        web = services.get("web")
        if not web or web["state"] != "running":
            sys.stderr.write('service "web" is not running\n')
            return 1
        return run_in_container(rest[rest.index("web") + 1 :], state)
    if command == "run":
        if "--no-deps" not in rest:
            port = int(os.environ.get("DB_PORT_EXTERNAL", 5432))
            services["db"] = {"state": "running", "port": port, "pid": os.getpid()}
            state["volumes"] = True
        return run_in_container(rest[rest.index("web") + 1 :], state)
    sys.stderr.write(f"unknown docker compose command: {command}\n")
    return 1


def exec_environment(argv: list[str]) -> dict[str, str]:
    """`-e NAME[=VALUE]` options of `compose ... exec`: a bare name's value is compose's own."""
    if "exec" not in argv:
        return {}
    options = argv[argv.index("exec") + 1 :]
    passed = {}
    while len(options) >= 2 and options[0] == "-e":
        name, _, value = options[1].partition("=")
        passed[name] = value if "=" in options[1] else os.environ.get(name, "")
        options = options[2:]
    return passed


def main() -> int:
    argv = sys.argv[1:]
    with open(os.environ["DOCKER_STANDIN_LOG"], "a") as log:
        ports = {
            key: os.environ[key] for key in ("WEB_PORT", "DB_PORT_EXTERNAL") if key in os.environ
        }
        record = {"argv": argv, "env": ports, "exec_env": exec_environment(argv)}
        log.write(json.dumps(record) + "\n")
    if argv[:1] == ["info"]:
        if os.environ.get("DOCKER_STANDIN_ENGINE") == "down":
            sys.stderr.write(ENGINE_DOWN + "\n")
            return 1
        sys.stdout.write("28.2.2\n")
        return 0
    if argv[:1] == ["inspect"]:
        # `inspect --format {{.State.Pid}} ID...`: the web "container" is the HTTP server.
        services = load_state(Path(os.environ["DOCKER_STANDIN_STATE"]))["services"]
        for container_id in argv[3:]:
            service = container_id.rsplit("-", 2)[-2]
            info = services.get(service) or {}
            sys.stdout.write(f"{info.get('server_pid') or info.get('pid') or 0}\n")
        return 0
    if argv[:1] == ["compose"]:
        state_path = Path(os.environ["DOCKER_STANDIN_STATE"])
        state = load_state(state_path)
        try:
            return compose(argv[1:], state)
        finally:
            save_state(state_path, state)
    sys.stderr.write(f"docker: unknown command: docker {' '.join(argv)}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
