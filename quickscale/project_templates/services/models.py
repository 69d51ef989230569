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
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

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
