"""Every periodic task the project's settings name can be scheduled."""

from django.conf import settings

from common.scheduler import check_periodic_tasks


def test_every_periodic_task_of_the_settings_imports_as_a_task() -> None:
    tasks = check_periodic_tasks()

    assert {task.path for task in tasks} == set(settings.PERIODIC_TASKS)
    assert all(task.interval.total_seconds() >= 1 for task in tasks)
