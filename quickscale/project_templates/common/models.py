"""Shared state that every process must see: rate-limit counters, call slots, the scheduler's.

The counters and slots are written only by raw upserts in ``common.ratelimit``
and ``common.concurrency``, one statement per change, so concurrent requests in
any number of processes never read a value and write it back. The scheduler's
lease and periodic runs are written only by ``common.scheduler``, under the
same rule: a conditional statement or a row lock decides, never a value read
earlier.
"""

from django.db import models


class RateLimitCounter(models.Model):
    """Events counted under ``key`` in the fixed window that ends at ``window_ends_at``.

    One row per key, reset in place when a later window starts, so the table does
    not grow with time; rows whose window has ended are deleted as new windows open.
    """

    key = models.CharField(max_length=200)
    window_ends_at = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key"], name="common_ratelimit_key")]

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.window_ends_at:%H:%M:%S}"


class CallSlot(models.Model):
    """One of the ``SERVICE_MAX_CONCURRENT_PER_KEY`` slots of ``key``, held by a running call.

    The holder deletes its row when the call ends; a holder that dies leaves a row
    that counts as free once ``expires_at`` has passed.
    """

    key = models.CharField(max_length=200)
    slot = models.PositiveSmallIntegerField()
    token = models.CharField(
        max_length=32, help_text="Identifies the holder, so only it frees the slot."
    )
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "slot"], name="common_callslot_key_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.key} #{self.slot}"


class SchedulerLease(models.Model):
    """Who runs the periodic scheduler (``common.scheduler``) until ``expires_at``.

    One row per lease ``name``. A scheduler takes or renews it with one conditional
    upsert, so of all the workers started together only one schedules; when its
    holder dies, another takes it once ``expires_at`` has passed. A row, not a
    session advisory lock: those break behind PgBouncer in transaction mode.
    """

    name = models.CharField(max_length=50)
    holder = models.CharField(max_length=64, help_text="The scheduler that holds it.")
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name"], name="common_schedulerlease_name")]

    def __str__(self) -> str:
        return f"{self.name}: {self.holder} until {self.expires_at:%H:%M:%S}"


class PeriodicRun(models.Model):
    """When the periodic task ``task`` (a dotted path in PERIODIC_TASKS) is next due.

    The scheduler enqueues a due run and moves ``next_run_at`` on in the same
    transaction, holding the row's lock, so a run is enqueued once even when two
    schedulers believe they hold the lease (a handover while one of them paused).
    """

    task = models.CharField(max_length=200)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task"], name="common_periodicrun_task")]

    def __str__(self) -> str:
        return f"{self.task} next at {self.next_run_at:%Y-%m-%d %H:%M:%S}"

