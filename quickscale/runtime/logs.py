"""The local runtime's log files: the tail of a log, following it, the lines an error quotes."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

# Lines of a log an error message quotes.
TAIL_LINES_IN_ERRORS = 20
# Lines read to find where a traceback in them begins (its frames are then left out).
TAIL_LINES_SCANNED = 400
FOLLOW_POLL_SECONDS = 0.25


def tail(path: Path, lines: int) -> tuple[list[str], int]:
    """The last `lines` lines of a file, reading only its end, and the offset just after them."""
    block = 8192
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = position = handle.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= lines:
            step = min(block, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    if lines <= 0:
        return [], end
    text = data.decode(errors="replace")
    return text.splitlines(keepends=True)[-lines:], end


def error_tail(lines: Iterable[str]) -> str:
    """The last lines of a log for an error message, Python tracebacks cut to their exception.

    A failed `bootstrap` or server start ends in a traceback whose frames say little
    to the user; its last line (the exception and its message) says what to fix.
    The whole log stays available through `quickscale logs web`.
    """
    kept: list[str] = []
    in_traceback = False
    for raw in lines:
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if line.startswith(("During handling of the above", "The above exception was")):
            continue
        if in_traceback:
            if line.startswith((" ", "\t")):
                continue
            in_traceback = False  # the exception line that ends the traceback
        kept.append(line)
    return "\n".join(kept[-TAIL_LINES_IN_ERRORS:]).rstrip()


def log_error_tail(path: Path) -> str:
    """`error_tail` of the end of the log at `path`, or "(no log)"."""
    try:
        return error_tail(tail(path, TAIL_LINES_SCANNED)[0])
    except OSError:
        return "(no log)"


def header(text: str) -> bytes:
    """The line written to a log before each step of the runtime, with the time."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"\n=== {stamp} quickscale: {text} ===\n".encode()


def show(path: Path, *, lines: int, follow: bool) -> None:
    """Print the last `lines` lines of `path` (if any), then follow it if asked until Ctrl-C."""
    position = 0
    if path.exists():
        last, position = tail(path, lines)
        sys.stdout.write("".join(last))
        sys.stdout.flush()
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            follow_from(path, position)


def follow_from(path: Path, position: int) -> None:
    """Print what is appended to `path` after `position` until interrupted.

    Survives truncation and rotation (a new file is read from its start).
    """
    inode = path.stat().st_ino if path.exists() else None
    while True:
        time.sleep(FOLLOW_POLL_SECONDS)
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if info.st_ino != inode or info.st_size < position:
            inode, position = info.st_ino, 0
        if info.st_size > position:
            for chunk in _read_from(path, position):
                sys.stdout.write(chunk.decode(errors="replace"))
                position += len(chunk)
            sys.stdout.flush()


def _read_from(path: Path, position: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(position)
        while chunk := handle.read(65536):
            yield chunk
