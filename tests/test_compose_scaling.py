"""docker-compose.yml scales out: many web and worker containers behind one proxy.

No Docker engine runs here, so the compose file is checked as a file (the rest
of its checks are in test_container_files.py), and the proxy is run for real:
Debian's nginx with the template's own server block and body limit script,
in front of a small HTTP server standing in for the web containers. Only the
two lines that name Docker's DNS are swapped for the stand-in's address (and
Debian's nginx predates the `resolve` flag the image's newer nginx has).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

TEMPLATE = Path(__file__).resolve().parents[1] / "quickscale" / "project_templates"
COMPOSE = TEMPLATE / "docker-compose.yml"
NGINX_CONF = TEMPLATE / "deploy" / "compose" / "nginx.conf"
BODY_LIMIT = TEMPLATE / "deploy" / "compose" / "body-limit.sh"
BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"
DOCKER_DNS = "resolver 127.0.0.11 valid=5s ipv6=off;"
WEB_SERVER = "server web:8000 resolve;"


def services() -> dict[str, Any]:
    spec: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return spec


def test_web_and_worker_scale_because_only_the_proxy_publishes_the_site():
    spec = services()
    web, worker, proxy = (spec["services"][name] for name in ("web", "worker", "proxy"))
    # `--scale web=3` would give three containers the same host port, or the same name.
    for name, service in (("web", web), ("worker", worker)):
        assert "ports" not in service, name
        assert "container_name" not in service, name
    assert web["expose"] == ["8000"]
    assert proxy["ports"] == ["${WEB_PORT:-8000}:8080"]
    assert "listen 8080;" in NGINX_CONF.read_text()
    assert proxy["image"].startswith("nginx:1.28")  # `server ... resolve` needs 1.27.3+


def test_the_app_counts_the_proxy_as_one_trusted_hop():
    # Without it every request would come from the proxy's address: one rate limit
    # and one sign-in lockout for all clients.
    for name in ("web", "worker"):
        assert services()["services"][name]["environment"]["TRUSTED_PROXY_COUNT"] == "1"


def test_the_proxy_mounts_its_files_from_the_project():
    proxy = services()["services"]["proxy"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in proxy["volumes"])
    assert mounts == {
        "./deploy/compose/nginx.conf": "/etc/nginx/conf.d/default.conf",
        "./deploy/compose/body-limit.sh": "/docker-entrypoint.d/19-body-limit.sh",
    }
    for source in mounts:
        assert (TEMPLATE / source).is_file(), source
    # The nginx image runs only the executable scripts of /docker-entrypoint.d.
    assert os.access(BODY_LIMIT, os.X_OK)


def test_the_proxy_gets_every_body_limit_setting_and_no_secret():
    proxy = services()["services"]["proxy"]
    assert "env_file" not in proxy
    script = BODY_LIMIT.read_text()
    read = set(re.findall(r'^consider (\w+) "\$\{\1:-\}"', script, re.MULTILINE))
    assert read == {
        "API_MAX_BODY_BYTES",
        "AVATAR_MAX_BYTES",
        "BODY_LIMIT_ANONYMOUS_BYTES",
        "BODY_LIMIT_FORMS_BYTES",
        "BODY_LIMIT_WEBHOOK_BYTES",
        "BODY_LIMIT_DEFAULT_BYTES",
    }
    assert proxy["environment"] == {name: f"${{{name}:-}}" for name in read}


def test_redis_is_optional_behind_a_profile():
    spec = services()
    redis = spec["services"]["redis"]
    assert redis["profiles"] == ["redis"]
    assert [name for name, service in spec["services"].items() if service.get("profiles")] == [
        "redis"
    ]
    assert redis["volumes"] == ["redisdata:/data"]
    assert "redisdata" in spec["volumes"]
    assert "ports" not in redis  # reached by name from the app's containers only


# The body limit script


def body_limit(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    output = tmp_path / "00-body-limit.conf"
    env = {"PATH": os.environ["PATH"], "BODY_LIMIT_CONF": str(output), **settings}
    return subprocess.run(
        ["sh", str(BODY_LIMIT)], env=env, capture_output=True, text=True, check=False
    )


def written_limit(tmp_path: Path) -> int:
    text = (tmp_path / "00-body-limit.conf").read_text()
    match = re.fullmatch(r"client_max_body_size (\d+);\n", text)
    assert match, text
    return int(match.group(1))


def test_body_limit_script_passes_shellcheck():
    found = BIN / "shellcheck"
    shellcheck = str(found) if found.exists() else shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: install requirements-dev.txt"
    done = subprocess.run([shellcheck, str(BODY_LIMIT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_body_limit_defaults_to_the_apps_largest_the_service_runs(tmp_path):
    # Empty values (compose passes `${NAME:-}`) mean the app's defaults.
    done = body_limit(tmp_path, API_MAX_BODY_BYTES="", AVATAR_MAX_BYTES="")
    assert done.returncode == 0, done.stderr
    assert written_limit(tmp_path) == 11 * 1024 * 1024


@pytest.mark.parametrize(
    ("settings", "largest"),
    [
        ({"API_MAX_BODY_BYTES": "1000", "AVATAR_MAX_BYTES": "1000"}, 1024 * 1024),
        ({"BODY_LIMIT_WEBHOOK_BYTES": "30000000"}, 30000000),
        # The profile page takes the avatar plus 64 KiB of other fields.
        ({"AVATAR_MAX_BYTES": "20000000"}, 20000000 + 65536),
    ],
)
def test_body_limit_is_the_largest_of_the_apps_limits(tmp_path, settings, largest):
    done = body_limit(tmp_path, **settings)
    assert done.returncode == 0, done.stderr
    assert written_limit(tmp_path) == largest


def test_body_limit_refuses_a_value_that_is_not_bytes(tmp_path):
    done = body_limit(tmp_path, BODY_LIMIT_FORMS_BYTES="256k")
    assert done.returncode == 1
    assert "BODY_LIMIT_FORMS_BYTES=256k is not a number of bytes" in done.stderr
    assert not (tmp_path / "00-body-limit.conf").exists()


# The proxy, running


@dataclass
class Seen:
    requests: list[dict[str, Any]] = field(default_factory=list)


def backend(seen: Seen) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.requests.append(
                {
                    "length": len(body),
                    "host": self.headers["Host"],
                    "forwarded_for": self.headers["X-Forwarded-For"],
                }
            )
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Small limits keep the bodies small: the largest is the avatar's plus 64 KiB.
SMALL_LIMITS = {
    "API_MAX_BODY_BYTES": "4000",
    "AVATAR_MAX_BYTES": "1000",
    "BODY_LIMIT_ANONYMOUS_BYTES": "1000",
    "BODY_LIMIT_FORMS_BYTES": "1000",
    "BODY_LIMIT_WEBHOOK_BYTES": "1000",
    "BODY_LIMIT_DEFAULT_BYTES": "1000",
}
SMALL_LARGEST = 1000 + 65536


@pytest.fixture
def proxy(tmp_path) -> Iterator[tuple[int, Seen]]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is missing: scripts/test installs it (Debian's nginx)"
    seen = Seen()
    server = backend(seen)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    done = body_limit(conf_d, **SMALL_LIMITS)
    assert done.returncode == 0, done.stderr
    site = NGINX_CONF.read_text()
    assert DOCKER_DNS in site and WEB_SERVER in site
    site = site.replace(DOCKER_DNS, "").replace(
        WEB_SERVER, f"server 127.0.0.1:{server.server_address[1]};"
    )
    port = free_port()
    (conf_d / "default.conf").write_text(site.replace("listen 8080;", f"listen {port};"))
    temp = tmp_path / "temp"
    temp.mkdir()
    (tmp_path / "nginx.conf").write_text(
        # The nginx image's own main file, as far as a test needs it. Started as root,
        # nginx's workers would become nobody, who cannot write the test's folders.
        f"{'user root;' if os.geteuid() == 0 else ''}\n"
        f"worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log stderr;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {temp}/body;\n"
        f"  proxy_temp_path {temp}/proxy;\n  fastcgi_temp_path {temp}/f;\n"
        f"  uwsgi_temp_path {temp}/u;\n  scgi_temp_path {temp}/s;\n"
        f"  include {conf_d}/*.conf;\n}}\n"
    )
    running = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert running.poll() is None, running.communicate()[1]
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield port, seen
    finally:
        running.terminate()
        running.communicate(timeout=10)
        server.shutdown()


def post(port: int, body: bytes, headers: dict[str, str] | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/api/text/", body=body, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def post_chunked(port: int, chunks: list[bytes]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/api/text/", body=iter(chunks), encode_chunked=True)
        return connection.getresponse().status
    finally:
        connection.close()


def test_proxy_passes_a_body_of_the_largest_limit_with_host_and_client(proxy):
    port, seen = proxy

    status = post(
        port, b"x" * SMALL_LARGEST, {"Host": "shop.example", "X-Forwarded-For": "6.6.6.6"}
    )

    assert status == 200
    [request] = seen.requests
    assert request["length"] == SMALL_LARGEST
    assert request["host"] == "shop.example"
    # Appended: the app trusts one hop (TRUSTED_PROXY_COUNT=1), the client's real address.
    assert request["forwarded_for"] == "6.6.6.6, 127.0.0.1"


def test_proxy_refuses_a_larger_body_before_the_app_sees_it(proxy):
    port, seen = proxy

    assert post(port, b"x" * (SMALL_LARGEST + 1)) == 413
    assert post_chunked(port, [b"x" * 40000, b"x" * 40000]) == 413
    assert seen.requests == []
