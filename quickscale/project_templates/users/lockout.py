"""Sign-in lockout: counted per account (email) and per client IP, in the database.

ACCOUNT_LOCKOUT_ATTEMPTS failures within ACCOUNT_LOCKOUT_MINUTES lock the account
(and, separately, the IP) for ACCOUNT_LOCKOUT_MINUTES. A successful sign-in clears
the account's counter; a completed password reset clears the account and the IP it
came from (the owner proved they read the mailbox). Staff lift lockouts in the admin.
The adapter calls these functions; nothing else writes LoginLockout rows.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from common.client_ip import client_ip
from users.models import LoginLockout

Scope = LoginLockout.Scope


@dataclass(frozen=True)
class LockoutStatus:
    """Whether sign-in is refused, and until when."""

    locked: bool
    until: datetime | None = None


def _window() -> timedelta:
    return timedelta(minutes=settings.ACCOUNT_LOCKOUT_MINUTES)


def _keys(request: HttpRequest, email: str) -> list[tuple[str, str]]:
    keys = []
    if email:
        keys.append((Scope.ACCOUNT.value, email.strip().lower()[:254]))
    ip = client_ip(request)
    if ip:
        keys.append((Scope.IP.value, ip))
    return keys


def _matching(keys: list[tuple[str, str]]) -> Q:
    query = Q(pk__in=[])
    for scope, key in keys:
        query |= Q(scope=scope, key=key)
    return query


def status(request: HttpRequest, email: str) -> LockoutStatus:
    """Return whether this email or this request's client IP is locked now (one query)."""
    now = timezone.now()
    until = (
        LoginLockout.objects.filter(_matching(_keys(request, email)), locked_until__gt=now)
        .order_by("-locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )
    return LockoutStatus(locked=until is not None, until=until)


def register_failure(request: HttpRequest, email: str) -> LockoutStatus:
    """Count one failed sign-in for the email and the IP; lock what reached the limit."""
    now = timezone.now()
    attempts = settings.ACCOUNT_LOCKOUT_ATTEMPTS
    locked_until: datetime | None = None
    with transaction.atomic():
        for scope, key in _keys(request, email):
            row, _ = LoginLockout.objects.select_for_update().get_or_create(
                scope=scope, key=key, defaults={"window_started": now}
            )
            if row.window_started + _window() <= now and not (
                row.locked_until and row.locked_until > now
            ):
                row.failures = 0
                row.window_started = now
                row.locked_until = None
            row.failures += 1
            if row.failures >= attempts:
                row.locked_until = now + _window()
                locked_until = max(locked_until or row.locked_until, row.locked_until)
            row.save()
    return LockoutStatus(locked=locked_until is not None, until=locked_until)


def clear_account(email: str) -> None:
    """Forget the failures of one account (after a successful sign-in)."""
    LoginLockout.objects.filter(scope=Scope.ACCOUNT, key=email.strip().lower()).delete()


def clear_after_reset(request: HttpRequest, email: str) -> None:
    """Lift the account's and this client IP's lockouts after a password reset."""
    LoginLockout.objects.filter(_matching(_keys(request, email))).delete()
