"""Reads on accounts: profiles, search by email, sign-in lockouts and the security log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from users.models import CustomUser, LoginLockout, Profile, SecurityEvent


def profile_for(user: CustomUser) -> Profile:
    """Return the user's profile, creating an empty one on first access."""
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


@dataclass(frozen=True)
class AccountCounts:
    users: int
    staff: int


def account_counts() -> AccountCounts:
    """How many accounts there are, and how many of them are staff (one query)."""
    row = CustomUser.objects.aggregate(
        users=Count("id"), staff=Count("id", filter=Q(is_staff=True))
    )
    return AccountCounts(users=row["users"], staff=row["staff"])


def users_by_email(email: str) -> QuerySet[CustomUser]:
    """Accounts matching ``email``: exactly (any case) for a full address, else by part.

    A full address is looked up through the unique index on ``lower(email)``;
    an empty ``email`` matches every account.
    """
    users = CustomUser.objects.all()
    if not email:
        return users
    if "@" in email and "." in email.split("@")[-1]:
        return users.alias(email_lower=Lower("email")).filter(email_lower=email.lower())
    return users.filter(email__icontains=email)


@dataclass(frozen=True)
class AccountLockout:
    failures: int
    locked_until: datetime | None

    @property
    def locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()


def account_lockout(user: CustomUser) -> AccountLockout | None:
    """The sign-in failures counted against ``user``'s account, if any."""
    row = LoginLockout.objects.filter(
        scope=LoginLockout.Scope.ACCOUNT, key=user.email.strip().lower()
    ).first()
    return None if row is None else AccountLockout(row.failures, row.locked_until)


def security_events(user: CustomUser, *, limit: int = 20) -> list[SecurityEvent]:
    """The latest security log lines of ``user``'s account."""
    return list(SecurityEvent.objects.filter(user=user).order_by("-created_at", "-id")[:limit])
