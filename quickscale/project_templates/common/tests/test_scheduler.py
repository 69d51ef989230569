"""The periodic scheduler enqueues each run once, whoever else schedules at the same moment."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

from common.models import PeriodicRun, SchedulerLease
from common.scheduler import LEASE_NAME, Scheduler, check_periodic_tasks
from common.testing.tasks import queued_task_names

BEAT = "common.tests.worker_tasks.beat"
OTHER = "common.tests.worker_tasks.other_beat"


@pytest.fixture(autouse=True)
def _periodic_tasks(settings: Any) -> None:
    settings.PERIODIC_TASKS = {BEAT: 60, OTHER: 3600}


def at_once(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` in ``count`` threads released together; each on its own connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action(index)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def pass_time(task: str, seconds: float) -> None:
    """What the passing of time does to a run: its next run comes ``seconds`` closer."""
    PeriodicRun.objects.filter(task=task).update(
        next_run_at=PeriodicRun.objects.get(task=task).next_run_at - timedelta(seconds=seconds)
    )


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_started_together_enqueue_each_periodic_run_once() -> None:
    """transaction=True: each scheduler works on its own connection, as in two workers."""
    schedulers = [Scheduler(holder=f"worker-{index}") for index in range(2)]

    def ticks(index: int) -> list[str]:
        return [path for _ in range(5) for path in schedulers[index].tick()]

    enqueued = at_once(2, ticks)

    assert Counter(queued_task_names()) == {BEAT: 1, OTHER: 1}
    assert sorted(len(paths) for paths in enqueued) == [0, 2]
    holder = SchedulerLease.objects.get(name=LEASE_NAME).holder
    assert [s.holds_lease for s in schedulers] == [s.holder == holder for s in schedulers]


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_that_both_believe_they_hold_the_lease_still_enqueue_a_run_once() -> None:
    """A handover while the old holder paused: all go straight to the due runs, at once."""
    schedulers = [Scheduler(holder=f"worker-{index}") for index in range(4)]
    schedulers[0].enqueue_due()  # the rows exist: nothing serialises on creating them

    for _ in range(5):
        pass_time(BEAT, 3600)
        pass_time(OTHER, 3600)
        at_once(4, lambda index: [schedulers[index].enqueue_due() for _ in range(3)])

    assert Counter(queued_task_names()) == {BEAT: 6, OTHER: 6}


@pytest.mark.django_db
def test_a_run_comes_again_once_its_interval_has_passed() -> None:
    scheduler = Scheduler()
    assert scheduler.tick() == [BEAT, OTHER]
    assert scheduler.tick() == []

    pass_time(BEAT, 59)
    assert scheduler.tick() == []
    pass_time(BEAT, 2)
    assert scheduler.tick() == [BEAT]

    assert Counter(queued_task_names()) == {BEAT: 2, OTHER: 1}
    run = PeriodicRun.objects.get(task=BEAT)
    assert run.last_run_at is not None
    assert run.next_run_at - run.last_run_at == timedelta(seconds=60)


@pytest.mark.django_db
def test_runs_missed_while_no_worker_ran_happen_once_not_once_per_interval() -> None:
    scheduler = Scheduler()
    scheduler.tick()
    pass_time(BEAT, 10 * 60)  # ten intervals without a worker

    assert scheduler.tick() == [BEAT]
    assert scheduler.tick() == []


@pytest.mark.django_db
def test_a_shortened_interval_applies_at_the_next_tick(settings: Any) -> None:
    scheduler = Scheduler()
    scheduler.tick()
    settings.PERIODIC_TASKS = {BEAT: 60, OTHER: 10}

    assert scheduler.tick() == [OTHER]
    assert scheduler.tick() == []


@pytest.mark.django_db
def test_a_task_removed_from_the_settings_is_no_longer_enqueued(settings: Any) -> None:
    scheduler = Scheduler()
    scheduler.tick()
    settings.PERIODIC_TASKS = {OTHER: 3600}
    pass_time(BEAT, 3600)

    assert scheduler.tick() == []


@pytest.mark.django_db
def test_only_the_lease_holder_schedules_until_its_lease_lapses() -> None:
    first, second = Scheduler(holder="first"), Scheduler(holder="second")
    assert first.tick() == [BEAT, OTHER]
    pass_time(BEAT, 60)

    assert second.tick() == []  # first holds the lease
    assert not second.holds_lease
    assert queued_task_names().count(BEAT) == 1

    SchedulerLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert second.tick() == [BEAT]  # first stopped renewing: second took over
    assert SchedulerLease.objects.get().holder == "second"
    assert first.tick() == []
    assert not first.holds_lease


@pytest.mark.django_db
def test_a_released_lease_is_taken_by_the_next_scheduler_at_once() -> None:
    first, second = Scheduler(holder="first"), Scheduler(holder="second")
    first.tick()
    assert not second.take_lease()

    first.release_lease()

    assert second.take_lease()
    assert SchedulerLease.objects.get().holder == "second"


@pytest.mark.django_db
def test_the_holder_renews_its_lease_at_each_tick() -> None:
    scheduler = Scheduler(holder="first", lease_seconds=30)
    scheduler.tick()
    SchedulerLease.objects.update(expires_at=timezone.now() + timedelta(seconds=1))

    scheduler.tick()

    remaining = SchedulerLease.objects.get().expires_at - timezone.now()
    assert timedelta(seconds=25) < remaining <= timedelta(seconds=30)


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_loop_ticks_until_stopped_then_gives_its_lease_up() -> None:
    stop = threading.Event()
    ticks: list[list[str]] = []

    def on_tick(enqueued: list[str]) -> None:
        ticks.append(enqueued)
        if len(ticks) == 3:
            stop.set()

    thread = threading.Thread(
        target=Scheduler(holder="looping").run,
        args=(stop,),
        kwargs={"tick_seconds": 0.01, "on_tick": on_tick},
    )
    thread.start()
    thread.join(30)

    assert not thread.is_alive()
    assert ticks == [[BEAT, OTHER], [], []]
    assert not SchedulerLease.objects.exists()


@pytest.mark.parametrize(
    ("configured", "message"),
    [
        ({BEAT: 0}, r"PERIODIC_TASKS\['common.tests.worker_tasks.beat'\] must be a whole number"),
        ({BEAT: "60"}, r"must be a whole number of seconds of at least 1, not '60'"),
        ({"common.tests.worker_tasks.missing": 60}, r"names 'common.tests.worker_tasks.missing'"),
        ({"no_such_module.task": 60}, r"cannot be imported"),
        ({"common.tests.worker_tasks.time": 60}, r"is not a task: define it with @task\(\)"),
        (["credits.tasks.expire_credits"], r"must map dotted task paths to intervals"),
    ],
)
def test_malformed_periodic_tasks_are_refused_in_one_line(
    settings: Any, configured: object, message: str
) -> None:
    settings.PERIODIC_TASKS = configured
    with pytest.raises(ImproperlyConfigured, match=message) as error:
        check_periodic_tasks()
    assert "\n" not in str(error.value)
