from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Shared helpers at the bottom of the app layers: mail, health, bootstrap, the scheduler."""

    name = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        from django_tasks.signals import task_enqueued

        from common.task_wakeup import notify_workers

        # Every process that enqueues (web, worker, commands) wakes idle database workers.
        task_enqueued.connect(notify_workers, dispatch_uid="common.task_wakeup")
