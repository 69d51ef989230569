"""Which TCP port the web server gets: the configured one, or the next free one if allowed."""

from __future__ import annotations

import socket

from quickscale.errors import QuickScaleError

TRUTHY = frozenset({"yes", "true", "1", "on", "enabled", "y", "t"})

# How far `next_free_port` looks before giving up.
SEARCH_SPAN = 100


def fallback_enabled(value: str | None) -> bool:
    """Read a `*_ALTERNATIVE_FALLBACK` flag: yes/true/1/on/enabled/y/t, any case."""
    return (value or "").strip().lower() in TRUTHY


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on `host:port` right now.

    Binds the way uvicorn does (SO_REUSEADDR), so a port left in TIME_WAIT by a
    server that just stopped counts as free, while a port someone listens on
    does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def next_free_port(start: int, host: str = "127.0.0.1", span: int = SEARCH_SPAN) -> int:
    """Return the first free port at or after `start`, looking at most `span` ports ahead."""
    for port in range(start, min(start + span, 65536)):
        if is_port_free(port, host):
            return port
    raise QuickScaleError(
        f"No free port between {start} and {start + span - 1}. "
        "Stop some servers or set WEB_PORT in .env to a free port."
    )


def parse_port(value: str | None, *, name: str, default: int) -> int:
    """Read a port number setting; a bad value is a clear error, not a guess."""
    if value is None or not value.strip():
        return default
    try:
        port = int(value.strip())
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise QuickScaleError(
            f"{name}={value!r} is not a port number. Set it to 1-65535 in .env "
            "(a value set in the environment wins over .env)."
        )
    return port
