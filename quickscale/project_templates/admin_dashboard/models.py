"""The audit log: one append-only row per staff action on the dashboard.

Rows are written by ``admin_dashboard.services.audit`` only. Nothing edits or
deletes them: ``save`` refuses to change an existing row, ``delete`` refuses,
and the Django admin shows them read-only. Foreign keys use ``PROTECT``, so a
staff member or customer with audit history cannot be deleted (accounts are
deactivated, never deleted).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class AuditLogError(Exception):
    """Raised when code tries to change or delete an audit row."""


class AuditLog(models.Model):
    """Who did what to which target, when, and why."""

    class Action(models.TextChoices):
        CREDIT_ADJUSTMENT = "credit_adjustment", "Credit adjustment"
        USER_UNLOCK = "user_unlock", "Account unlocked"
        SERVICE_TOGGLE = "service_toggle", "Service switched on/off"
        SERVICE_COST = "service_cost", "Service cost changed"
        PRODUCT_SYNC = "product_sync", "Stripe product sync"
        PAYMENT_SEARCH = "payment_search", "Payment search"
        PAYMENT_INVESTIGATION = "payment_investigation", "Payment investigation"
        REFUND = "refund", "Refund"
        REFUND_FAILED = "refund_failed", "Refund refused or failed"

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=40, choices=Action.choices)
    # The target: a user (target_user) and/or any object named by type and id.
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    target_type = models.CharField(max_length=50, blank=True, default="")
    target_id = models.CharField(max_length=100, blank=True, default="")
    target_label = models.CharField(max_length=255, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # Idempotency of the action that wrote the row (a form token): one row per action.
    reference = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["action", "reference"],
                condition=~Q(reference=""),
                name="admin_dashboard_audit_unique_reference",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="audit_recent"),
            models.Index(fields=["action", "-created_at"], name="audit_action_recent"),
            models.Index(fields=["actor", "-created_at"], name="audit_actor_recent"),
            models.Index(fields=["target_user", "-created_at"], name="audit_target_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.get_action_display()} by {self.actor_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AuditLogError("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogError("Audit entries cannot be deleted.")


class RefundRequest(models.Model):
    """A staff member's claim to refund a payment, taken before the refund is attempted.

    ``sequence`` is the number of requests the staff member saw on the page; the
    unique (payment, sequence) pair means a double click, a resubmitted form or
    two staff members acting on the same page state make one request: the
    others are refused before ``stripe_manager.refunds.refund_payment`` runs.
    The refund itself is ``stripe_manager``'s; this row only records who asked.
    """

    payment = models.ForeignKey(
        "stripe_manager.Payment", on_delete=models.PROTECT, related_name="+"
    )
    sequence = models.PositiveIntegerField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    reason = models.TextField()
    refund = models.ForeignKey(
        "stripe_manager.Refund", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "sequence"], name="admin_dashboard_one_request_per_state"
            ),
        ]

    def __str__(self) -> str:
        return f"Refund request {self.sequence} of payment {self.payment_id}"
