"""Accounts: the email-only user, its profile, sign-in lockouts and the security log."""

import uuid
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

from users.avatars import AVATAR_EXTENSION, AVATAR_FOLDER
from users.managers import CustomUserManager


class CustomUser(AbstractUser):
    """A user who signs in with an email address.

    Emails are unique regardless of case (a database constraint on ``lower(email)``),
    because mail providers treat ``Bob@x.com`` and ``bob@x.com`` as one mailbox.
    """

    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    # createsuperuser asks for USERNAME_FIELD and the password already.
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[CustomUserManager] = CustomUserManager()  # type: ignore[assignment]

    class Meta:
        verbose_name = "user"
        verbose_name_plural = "users"
        constraints = [
            models.UniqueConstraint(Lower("email"), name="users_customuser_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email


def avatar_path(instance: "Profile", filename: str) -> str:
    """Name a stored avatar: random, with the extension of the format it was re-encoded to.

    The upload's own name and extension are ignored: the file holds what
    ``users.avatars.avatar_encode`` wrote, whatever it was called when sent.
    """
    return f"{AVATAR_FOLDER}/{uuid.uuid4().hex}{AVATAR_EXTENSION}"


class Profile(models.Model):
    """What a user tells about themselves; created on first access."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    full_name = models.CharField(max_length=150, blank=True)
    bio = models.TextField(max_length=1000, blank=True)
    avatar = models.ImageField(upload_to=avatar_path, blank=True)
    # Emails the user may switch off (users.email_preferences); receipts and
    # security emails are always sent.
    email_low_balance = models.BooleanField("Low balance", default=True)
    email_expiry = models.BooleanField("Credits about to expire", default=True)
    email_renewal = models.BooleanField("Plan renewal reminders", default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.full_name or str(self.user)


class LoginLockout(models.Model):
    """Failed sign-ins counted for one account (by email) or one client IP.

    ``failures`` counts within a window of ACCOUNT_LOCKOUT_MINUTES that starts at
    ``window_started``; reaching ACCOUNT_LOCKOUT_ATTEMPTS sets ``locked_until``.
    Staff lift a lockout in the admin (which deletes the row).
    """

    class Scope(models.TextChoices):
        ACCOUNT = "account", "Account"
        IP = "ip", "Client IP"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    key = models.CharField(max_length=254, help_text="Lower-cased email or client IP.")
    failures = models.PositiveIntegerField(default=0)
    window_started = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="users_loginlockout_scope_key"),
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} {self.key}"


class SecurityEvent(models.Model):
    """One line of the security log; written by ``users.security.record`` only."""

    class Kind(models.TextChoices):
        LOGIN_SUCCEEDED = "login_succeeded", "Sign-in succeeded"
        LOGIN_FAILED = "login_failed", "Sign-in failed"
        LOCKED_OUT = "locked_out", "Locked out"
        LOCKOUT_LIFTED = "lockout_lifted", "Lockout lifted"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        PASSWORD_SET = "password_set", "Password set"
        PASSWORD_RESET = "password_reset", "Password reset"
        EMAIL_CHANGED = "email_changed", "Primary email changed"
        EMAIL_ADDED = "email_added", "Email added"
        EMAIL_REMOVED = "email_removed", "Email removed"
        ACCOUNT_DELETED = "account_deleted", "Account deleted"
        MFA_ENABLED = "mfa_enabled", "Two-factor method added"
        MFA_DISABLED = "mfa_disabled", "Two-factor method removed"
        MFA_RECOVERY_CODES_REGENERATED = "mfa_codes_regenerated", "Recovery codes regenerated"
        MFA_USED = "mfa_used", "Two-factor code accepted"
        MFA_RECOVERY_CODE_USED = "mfa_recovery_code_used", "Recovery code used"
        MFA_FAILED = "mfa_failed", "Two-factor code refused"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # SET_NULL is never exercised by the app (accounts are deactivated, not deleted),
    # but a row deleted in the shell must not take the log with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="security_events",
    )
    email = models.CharField(max_length=254, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.email}"
