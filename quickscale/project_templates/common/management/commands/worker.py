"""`manage.py worker`: run background tasks and the periodic scheduler, in one process.

`quickscale up` starts one beside the web server; the Docker image runs it as
the `worker` service (`entrypoint.sh worker`). More workers add throughput:
every one of them runs a scheduler, and a lease lets only one of them enqueue
each periodic run. See ``common.task_worker`` for what runs, and how it stops.
"""

import argparse
import os
import socket
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.task_worker import POLL_SECONDS, WorkerStartError, check_ready, serve


def default_worker_id() -> str:
    """Host and pid: unique among running workers, and says where to look in the logs."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}"


class Command(BaseCommand):
    help = (
        "Run background tasks (TASK_BACKEND) and the periodic scheduler (PERIODIC_TASKS). "
        "Stops after the running task on SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="Run tasks only; leave periodic scheduling to other workers.",
        )
        parser.add_argument(
            "--poll-seconds",
            type=float,
            default=POLL_SECONDS,
            help=f"Database backend: how often an idle worker looks for tasks without a "
            f"notice (default {POLL_SECONDS}).",
        )
        parser.add_argument(
            "--no-listen",
            action="store_true",
            help="Database backend: find tasks by polling alone, without waking on a "
            "notice (behind PgBouncer in transaction mode notices never arrive).",
        )
        parser.add_argument(
            "--reload",
            action="store_true",
            help="Restart when a Python file changes (development; quickscale up sets it).",
        )
        parser.add_argument("--worker-id", default="", help="Name in logs and task results.")
        # What --reload's supervisor gives the worker it runs: it checked already, and a
        # database that is down for a moment as a worker restarts must not end it.
        parser.add_argument("--checked", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["poll_seconds"] > 0:
            raise CommandError("--poll-seconds must be more than 0, e.g. 1.")
        if not options["checked"]:
            try:
                check_ready()
            except WorkerStartError as error:
                raise CommandError(str(error)) from None
        if options["reload"]:
            from common.worker_reload import run_with_reload

            child = [sys.executable, str(settings.BASE_DIR / "manage.py"), "worker", "--checked"]
            child += ["--poll-seconds", str(options["poll_seconds"])]
            for flag in ("no_scheduler", "no_listen"):
                if options[flag]:
                    child.append("--" + flag.replace("_", "-"))
            if options["worker_id"]:
                child += ["--worker-id", options["worker_id"]]
            code = run_with_reload(child, root=settings.BASE_DIR)
            if code:
                sys.exit(code)
            return
        serve(
            worker_id=(options["worker_id"] or default_worker_id())[:64],
            scheduler=not options["no_scheduler"],
            poll_seconds=options["poll_seconds"],
            listen=not options["no_listen"],
        )
