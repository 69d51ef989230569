"""Services and their usage records.

``Service`` is the configuration of one service: its cost and whether it is
on. The code of a service is a ``BaseService`` subclass registered under the
same name (``services/registry.py``); ``bootstrap`` creates the missing rows
from the classes' declared defaults, and ``configure_service`` changes them.

``ServiceUsage`` records one call: who, which service, from where (web, api,
...), what it cost, the ledger entry of the charge, and its outcome. A call's
row is written *pending* in the transaction that charges it and gets its final
status (succeeded, or failed with the charge reversed) when the call ends; a row
still pending long after that is a call whose end was never recorded (the
database went away), which ``reconcile_service_usage`` fails and refunds
(``services/usage.py``). It knows nothing of API keys: the ``api`` app links its
keys to usages with its own rows, so dependencies keep pointing downwards.

``Job`` is one call run in the background by a worker (``services/jobs.py``
says how): it is the source of truth of the call's state, progress, lease
and money (the key of the credit hold taken at enqueue); the task queue
carries only its id. A job that ran gets a ``ServiceUsage`` row when it ends.
"""

from __future__ import annotations

import re
import secrets
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

COST_MAX_DIGITS = 10
# A service name is a Python identifier: it names a module in services/custom/ too.
SERVICE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
COST_DECIMAL_PLACES = 2


class Service(models.Model):
    """The configuration of one service: name, description, cost per call, on or off."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    credit_cost = models.DecimalField(
        max_digits=COST_MAX_DIGITS, decimal_places=COST_DECIMAL_PLACES, default=Decimal("0.00")
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_cost__gte=0), name="service_credit_cost_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_free(self) -> bool:
        return self.credit_cost == 0


class ServiceUsage(models.Model):
    """One call of a service by a user: pending while it runs, then its outcome.

    ``credits_charged`` is what the call costs the user: the service's price
    while pending and once succeeded, 0 once failed (the charge was reversed).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REFUNDED = "refunded", "Refunded"
        # A job cancelled while it ran: charged for the part it processed.
        CANCELLED = "cancelled", "Cancelled"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="service_usages"
    )
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="usages")
    origin = models.CharField(max_length=20, default="web")
    credits_charged = models.DecimalField(
        max_digits=COST_MAX_DIGITS, decimal_places=COST_DECIMAL_PLACES, default=Decimal("0.00")
    )
    ledger_entry = models.ForeignKey(
        "credits.LedgerEntry",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="service_usages",
        help_text="The consume entry of the charge; empty for free calls.",
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    duration_ms = models.PositiveIntegerField(default=0)
    input_summary = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="usage_user_recent"),
            # The reconciler's lookup: only the few unfinished rows, however long the history.
            models.Index(
                fields=["created_at"], condition=Q(status="pending"), name="usage_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service.name} by {self.user_id} ({self.status})"


JOB_RESULTS_FOLDER = "job_results"


def job_result_path(instance: Job | None, filename: str) -> str:
    """Name a job's result file: a random folder nobody can guess, then the file's name.

    Nothing under MEDIA_ROOT has a URL of its own (``core/urls.py``): the file
    is served only by the owner-checked download view, as an attachment.
    """
    return f"{JOB_RESULTS_FOLDER}/{secrets.token_urlsafe(24)}/{filename}"


class Job(models.Model):
    """One service call run in the background; the task queue carries only its id.

    States: *queued* (waiting for a worker; its credits held), *running* (a
    worker holds its lease until ``lease_expires_at``, renewed at each progress
    report), then one of *succeeded*, *failed* or *cancelled*. ``attempts``
    counts the runs a worker started; it is also the fencing token of a run: a
    worker whose lease lapsed and whose job was taken again changes nothing.
    ``hold_key`` names the credit hold of a paid job ("" for a free one);
    ``credits_held`` is its amount, ``credits_charged`` what the settle took.
    ``inputs`` (the user's content) is kept only while the job may still run:
    it is emptied when the job ends (the usage row keeps a summary).
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Origin(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"

    FINISHED_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})

    # A random id: job URLs (/jobs/<id>/, /api/jobs/<id>) reveal nothing about other jobs.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="jobs")
    inputs = models.JSONField(
        default=dict, help_text="The service's cleaned inputs; emptied when the job ends."
    )
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.WEB)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0 to 100.")
    progress_message = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    hold_key = models.CharField(max_length=100, blank=True)
    credits_held = models.DecimalField(
        max_digits=COST_MAX_DIGITS + 4, decimal_places=COST_DECIMAL_PLACES, default=Decimal("0.00")
    )
    credits_charged = models.DecimalField(
        max_digits=COST_MAX_DIGITS + 4, decimal_places=COST_DECIMAL_PLACES, default=Decimal("0.00")
    )
    units_billable = models.PositiveIntegerField(
        default=1, help_text="Units the hold covers (texts, pages...); the cost is per unit."
    )
    units_processed = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    result_file = models.FileField(upload_to=job_result_path, max_length=255, blank=True)
    error = models.CharField(max_length=300, blank=True)
    expires_at = models.DateTimeField(
        help_text="The hold's expiry: a job must finish by then, or it fails uncharged."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(
        default=timezone.now,
        help_text="When its task was last put on the queue; the sweep enqueues it again "
        "if it waits much longer (its task may have been lost).",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="job_owner_recent"),
            # The lease sweep: running jobs by lease expiry, however long the history.
            models.Index(
                fields=["lease_expires_at"], condition=Q(state="running"), name="job_running_lease"
            ),
            models.Index(fields=["created_at"], condition=Q(state="queued"), name="job_queued"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="job_progress_at_most_100"),
            models.CheckConstraint(
                condition=Q(credits_held__gte=0) & Q(credits_charged__gte=0),
                name="job_credits_not_negative",
            ),
            models.UniqueConstraint(
                fields=["hold_key"], condition=~Q(hold_key=""), name="job_hold_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service.name} job {self.pk} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED_STATES
