"""Build-and-boot benchmark: how fast `quickscale build` and `up` are next to plain baselines.

Everything is measured in one run, on this machine, so the ratios mean something:

- build: median of N `quickscale build NAME --no-start`, beside a plain recursive
  copy of the template tree by a Python subprocess (`python -c` with
  `shutil.copytree`, so both pay interpreter start-up) and beside
  `django-admin startproject`.
- first `up` to the first 200: a fresh project (new venv; the package cache is
  warmed first), then a second `up` after `down`; beside `django-admin
  startproject` + `runserver` to its first 200.

Only loopback addresses are used. Usage:

    .venv/bin/python bench/build_and_boot.py [--runs 5] [--no-warm-cache]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from benchdb import TEMPLATE

BIN = Path(sys.executable).parent
QUICKSCALE = str(BIN / "quickscale")
DJANGO_ADMIN = str(BIN / "django-admin")
# The same names `build` skips (quickscale.generator.copy.EXCLUDED_NAMES), so
# both copies move the same files.
COPY_SNIPPET = (
    "import shutil, sys; from quickscale.generator.copy import EXCLUDED_NAMES; "
    "shutil.copytree(sys.argv[1], sys.argv[2], "
    "ignore=shutil.ignore_patterns(*EXCLUDED_NAMES, '*.pyc', '*.pyo'))"
)
TARGETS = {
    "build": "<= 2x plain copy and < 0.3 s",
    "first up": "< 20 s (warm package cache)",
    "second up": "< 5 s",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_of(runs: int, action: Callable[[int], None]) -> float:
    return statistics.median(timed(lambda i=i: action(i)) for i in range(runs))


def wait_for_200(url: str, timeout: float = 120.0) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer 200 within {timeout:.0f} s")


def set_env_value(env_file: Path, key: str, value: str) -> None:
    lines = [line for line in env_file.read_text().splitlines() if not line.startswith(f"{key}=")]
    env_file.write_text("\n".join([*lines, f"{key}={value}"]) + "\n")


def bench_build(work: Path, runs: int) -> dict[str, float]:
    def build(i: int) -> None:
        run([QUICKSCALE, "build", f"b{i}", "--no-start"], cwd=work / "build")

    def copy(i: int) -> None:
        run([sys.executable, "-c", COPY_SNIPPET, str(TEMPLATE), f"c{i}"], cwd=work / "copy")

    def startproject(i: int) -> None:
        run([DJANGO_ADMIN, "startproject", f"s{i}"], cwd=work / "startproject")

    for name in ("build", "copy", "startproject"):
        (work / name).mkdir()
    return {
        "build": median_of(runs, build),
        "copy": median_of(runs, copy),
        "startproject": median_of(runs, startproject),
    }


def warm_package_cache(work: Path) -> None:
    """Install the template's requirements once into a throwaway venv (fills uv's cache)."""
    from quickscale.runtime import venv

    holder = work / "warm"
    holder.mkdir()
    for requirements in TEMPLATE.glob("requirements*.txt"):
        shutil.copy2(requirements, holder / requirements.name)
    venv.ensure_venv(holder)
    venv.stop_background_compile(holder)  # only the cache is wanted; it would race rmtree
    shutil.rmtree(holder)


def bench_up(work: Path) -> dict[str, float]:
    (work / "up").mkdir()
    run([QUICKSCALE, "build", "boot", "--no-start"], cwd=work / "up")
    project = work / "up" / "boot"
    port = free_port()
    set_env_value(project / ".env", "WEB_PORT", str(port))
    url = f"http://127.0.0.1:{port}/"
    try:

        def up() -> None:
            run([QUICKSCALE, "up"], cwd=project)
            wait_for_200(url)

        first = timed(up)
        run([QUICKSCALE, "down"], cwd=project)
        second = timed(up)
    finally:
        subprocess.run(
            [QUICKSCALE, "destroy", "--yes"], cwd=project, capture_output=True, check=False
        )
    return {"first up": first, "second up": second}


def bench_runserver(work: Path) -> float:
    (work / "runserver").mkdir()
    port = free_port()
    server: subprocess.Popen[bytes] | None = None

    def start() -> None:
        nonlocal server
        run([DJANGO_ADMIN, "startproject", "rs"], cwd=work / "runserver")
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=work / "runserver" / "rs",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_200(f"http://127.0.0.1:{port}/")

    try:
        return timed(start)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)


def table(rows: list[tuple[str, float, str, float, str]]) -> str:
    """One text table: measurement, its time, the baseline, its time, ratio, target."""
    header = ("measurement", "seconds", "baseline", "seconds", "ratio", "target")
    lines = [header]
    for name, seconds, baseline, base_seconds, target in rows:
        ratio = f"{seconds / base_seconds:.2f}x" if base_seconds else "-"
        lines.append((name, f"{seconds:.3f}", baseline, f"{base_seconds:.3f}", ratio, target))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="builds per median (default 5)")
    parser.add_argument(
        "--no-warm-cache", action="store_true", help="skip filling the package cache first"
    )
    options = parser.parse_args()
    os.environ.pop("DATABASE_URL", None)  # the local runtime's embedded cluster, as a user gets
    with tempfile.TemporaryDirectory(prefix="qs-bench-") as temp:
        work = Path(temp)
        builds = bench_build(work, options.runs)
        if not options.no_warm_cache:
            warm_package_cache(work)
        ups = bench_up(work)
        runserver = bench_runserver(work)
    build = f"build --no-start (median of {options.runs})"
    baseline = "startproject + runserver -> 200"
    rows = [
        (build, builds["build"], "python -c copytree", builds["copy"], TARGETS["build"]),
        (build, builds["build"], "django-admin startproject", builds["startproject"], ""),
        ("first up -> 200 (new venv)", ups["first up"], baseline, runserver, TARGETS["first up"]),
        (
            "second up -> 200 (after down)",
            ups["second up"],
            baseline,
            runserver,
            TARGETS["second up"],
        ),
    ]
    print(table(rows))
    build_ok = builds["build"] <= 2 * builds["copy"] and builds["build"] < 0.3
    verdicts = {
        "build": build_ok,
        "first up": ups["first up"] < 20,
        "second up": ups["second up"] < 5,
    }
    print()
    print("targets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in verdicts.items()))


if __name__ == "__main__":
    main()
