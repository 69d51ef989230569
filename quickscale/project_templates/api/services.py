"""Writes of the api app: create, revoke and authenticate API keys, link usage and jobs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from api.models import APIKey, APIKeyJob, APIKeyUsage
from services.models import Job, ServiceUsage
from users.models import CustomUser

KEY_PREFIX = "qs"
PREFIX_BYTES = 6  # 12 hex characters
# Writing last_used_at on every call would make each call a write; once a minute is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(user: CustomUser, *, name: str) -> tuple[APIKey, str]:
    """Create a key and return it with the full key text, which is never stored."""
    name = name.strip()[:100] or "API key"
    while True:
        prefix = secrets.token_hex(PREFIX_BYTES)
        if not APIKey.objects.filter(prefix=prefix).exists():
            break
    secret = secrets.token_urlsafe(32)
    key = APIKey.objects.create(user=user, name=name, prefix=prefix, secret_hash=_hash(secret))
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


@transaction.atomic
def api_key_revoke(user: CustomUser, *, key_id: int) -> APIKey | None:
    """Revoke ``user``'s key ``key_id`` (once); None when the user has no such key."""
    key = APIKey.objects.select_for_update().filter(user=user, pk=key_id).first()
    if key is not None and key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def api_key_authenticate(raw: str) -> APIKey | None:
    """Return the active key ``raw`` names, or None; records when it was last used."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    key = APIKey.objects.select_related("user").filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(parts[2])):
        return None
    if key.revoked_at is not None or not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def api_key_usage_record(key: APIKey, usage: ServiceUsage) -> APIKeyUsage:
    """Link a service call to the key that made it."""
    return APIKeyUsage.objects.create(key=key, usage=usage)


def api_key_job_record(key: APIKey, job: Job) -> APIKeyJob:
    """Link a queued job to the key that queued it."""
    return APIKeyJob.objects.create(key=key, job=job)
