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


# A failed sign-in leaves its LockoutStatus on the request under this name: the sign-in
# and code pages re-rendered after it warn when few attempts are left
# (templates/account/_attempts_left.html).
REQUEST_ATTRIBUTE = "sign_in_lockout"


@dataclass(frozen=True)
class LockoutStatus:
    """Whether sign-in is refused, and until when.

    ``attempts_left``: after a failure that did not lock, how many more failures
    lock the account or the IP (the fewer of the two); None when not counted.
    """

    locked: bool
    until: datetime | None = None
    attempts_left: int | None = None

    @property
    def lock_minutes(self) -> int:
        """How long a lock lasts."""
        return int(settings.ACCOUNT_LOCKOUT_MINUTES)


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
    """Count one failed sign-in for the email and the IP; lock what reached the limit.

    Also leaves the status on ``request.sign_in_lockout`` (REQUEST_ATTRIBUTE) when
    nothing was locked, for the page that shows the failure.
    """
    now = timezone.now()
    attempts = settings.ACCOUNT_LOCKOUT_ATTEMPTS
    locked_until: datetime | None = None
    attempts_left = attempts
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
            attempts_left = min(attempts_left, attempts - row.failures)
            row.save()
    if locked_until is not None:
        return LockoutStatus(locked=True, until=locked_until)
    result = LockoutStatus(locked=False, attempts_left=attempts_left)
    setattr(request, REQUEST_ATTRIBUTE, result)
    return result


def clear_account(email: str) -> None:
    """Forget the failures of one account (after a successful sign-in)."""
    LoginLockout.objects.filter(scope=Scope.ACCOUNT, key=email.strip().lower()).delete()


def clear_after_reset(request: HttpRequest, email: str) -> None:
    """Lift the account's and this client IP's lockouts after a password reset."""
    LoginLockout.objects.filter(_matching(_keys(request, email))).delete()
