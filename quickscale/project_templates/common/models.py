"""Shared state that every process must see: rate-limit counters, call slots, the scheduler's.

The counters and slots are written only by raw upserts in ``common.ratelimit``
and ``common.concurrency``, one statement per change, so concurrent requests in
any number of processes never read a value and write it back. The scheduler's
lease and periodic runs are written only by ``common.scheduler``, under the
same rule: a conditional statement or a row lock decides, never a value read
earlier.
"""

from django.db import models
from django.utils import timezone


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


class QueuedEmail(models.Model):
    """One logical email (a receipt, a reset link) from the moment it is decided until sent.

    The transactional outbox of ``common.mail_tasks``: the row is written in the
    transaction of what caused the email, so it exists exactly when that committed;
    it is the worker's work item itself (no task carries it), claimed by one
    worker at a time, and it says whether it was sent, so it is sent once.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Given up"
        SKIPPED = "skipped", "Skipped (nothing to send)"

    key = models.CharField(
        max_length=200, unique=True, help_text="The logical email, e.g. receipt:12; sent once."
    )
    builder = models.CharField(
        max_length=200, help_text="Dotted path of the function that renders it at send time."
    )
    params = models.JSONField(default=dict, blank=True, help_text="Plain values for the builder.")
    secret = models.BooleanField(
        default=False, help_text="The params hold a secret (a reset link): erased once done."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is sending it until then."
    )
    recipients = models.CharField(max_length=500, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The worker's claim reads only the few pending rows, however many were sent.
            models.Index(
                fields=["next_attempt_at"],
                name="common_queuedemail_pending",
                condition=models.Q(state="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
