"""API keys and the service calls and jobs they caused.

A key is ``qs_<prefix>_<secret>``. The prefix (public, unique) finds the row;
only a SHA-256 hash of the secret is stored, so the full key is shown once,
at creation, and can never be shown again. Keys carry 256 bits of randomness,
so a fast hash is enough (a slow password hash would only slow every call).
``APIKeyUsage`` and ``APIKeyJob`` link a direct call and a queued job to the key
that made it (the services app knows nothing of keys).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class APIKey(models.Model):
    """One API key of a user; revoked keys stay for the usage history."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class APIKeyUsage(models.Model):
    """Links a service call (``services.ServiceUsage``) to the key that made it."""

    key = models.ForeignKey(APIKey, on_delete=models.PROTECT, related_name="usages")
    usage = models.OneToOneField(
        "services.ServiceUsage", on_delete=models.PROTECT, related_name="api_key_usage"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"usage {self.usage_id} by key {self.key_id}"


class APIKeyJob(models.Model):
    """Links a background job (``services.Job``) to the key that queued it."""

    key = models.ForeignKey(APIKey, on_delete=models.PROTECT, related_name="jobs")
    job = models.OneToOneField("services.Job", on_delete=models.PROTECT, related_name="api_key_job")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"job {self.job_id} by key {self.key_id}"
