"""What every runtime promises, as a test mixin (like Django's SessionTestsMixin).

A test class inherits `RuntimeContract` and provides a class-scoped fixture
`contract_subject` returning a `ContractSubject`: a built project's runtime,
and how to tell whether its database data exists. The tests run in the order
written and share that one project: up, status, up again, /health/, manage,
down, up again with the data kept, destroy. Each test also establishes what it
needs first (calling `up()` is cheap when already running), so one can run
alone with `-k`.

A runtime whose `manage` cannot really run SQL (a stand-in engine) overrides
`write_marker` and `marker_exists`.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from quickscale.runtime.base import Runtime, ServiceState, ServiceStatus

MARKER_TABLE = "quickscale_contract_marker"

WRITE_MARKER = (
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    f"    cursor.execute('CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (value text)')\n"
    f"    cursor.execute(\"INSERT INTO {MARKER_TABLE} VALUES ('kept')\")\n"
)
CHECK_MARKER = (
    "import sys\n"
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    f"    cursor.execute(\"SELECT to_regclass('{MARKER_TABLE}')\")\n"
    "    if cursor.fetchone()[0] is None:\n"
    "        sys.exit(3)\n"
    f"    cursor.execute('SELECT count(*) FROM {MARKER_TABLE}')\n"
    "    sys.exit(0 if cursor.fetchone()[0] else 3)\n"
)


@dataclass
class ContractSubject:
    runtime: Runtime
    # True while the project's database data exists wherever this runtime keeps it.
    data_exists: Callable[[], bool]


def http_status(url: str) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def rows(runtime: Runtime) -> dict[str, ServiceStatus]:
    return {row.name: row for row in runtime.status()}


class RuntimeContract:
    """Mixin: the behaviour every `Runtime` must show against a built project."""

    def write_marker(self, runtime: Runtime) -> None:
        assert runtime.manage(["shell", "-c", WRITE_MARKER]) == 0

    def marker_exists(self, runtime: Runtime) -> bool:
        return runtime.manage(["shell", "-c", CHECK_MARKER]) == 0

    def test_up_starts_web_with_a_port_and_pid(self, contract_subject: ContractSubject) -> None:
        result = contract_subject.runtime.up()
        assert result.url.startswith("http://")
        status = rows(contract_subject.runtime)
        assert set(status) == {"web", "worker", "db", "mail"}
        assert status["web"].state == ServiceState.RUNNING
        assert status["web"].port is not None
        assert str(status["web"].port) in result.url
        assert status["web"].pid is not None
        assert status["db"].state in (ServiceState.RUNNING, ServiceState.EXTERNAL)

    def test_up_starts_the_worker_beside_the_web_server(
        self, contract_subject: ContractSubject
    ) -> None:
        contract_subject.runtime.up()
        worker = rows(contract_subject.runtime)["worker"]
        assert worker.state == ServiceState.RUNNING
        assert worker.pid is not None
        assert worker.port is None  # it serves no HTTP

    def test_up_again_reports_already_running(self, contract_subject: ContractSubject) -> None:
        first = contract_subject.runtime.up()
        second = contract_subject.runtime.up()
        assert second.already_running
        assert second.url == first.url

    def test_health_answers(self, contract_subject: ContractSubject) -> None:
        url = contract_subject.runtime.up().url
        assert http_status(url.rstrip("/") + "/health/") == 200

    def test_manage_passes_exit_codes_through(self, contract_subject: ContractSubject) -> None:
        assert contract_subject.runtime.manage(["check"]) == 0
        assert contract_subject.runtime.manage(["bogus-cmd"]) != 0

    def test_down_stops_and_up_keeps_the_data(self, contract_subject: ContractSubject) -> None:
        runtime = contract_subject.runtime
        runtime.up()
        self.write_marker(runtime)
        runtime.down()
        status = rows(runtime)
        assert status["web"].state == ServiceState.STOPPED
        assert status["web"].pid is None
        assert status["worker"].state == ServiceState.STOPPED
        assert status["worker"].pid is None
        assert status["db"].state in (ServiceState.STOPPED, ServiceState.EXTERNAL)
        url = runtime.up().url
        assert http_status(url.rstrip("/") + "/health/") == 200
        assert self.marker_exists(runtime)

    def test_destroy_removes_the_data(self, contract_subject: ContractSubject) -> None:
        runtime = contract_subject.runtime
        runtime.up()
        assert contract_subject.data_exists()
        runtime.destroy()
        assert not contract_subject.data_exists()
        assert rows(runtime)["web"].state == ServiceState.STOPPED


__all__ = ["ContractSubject", "RuntimeContract", "http_status", "rows"]
