"""Shared state that every worker process must see: rate-limit counters and call slots.

Both tables are written only by raw upserts in ``common.ratelimit`` and
``common.concurrency``, one statement per change, so concurrent requests in
any number of processes never read a value and write it back.
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
