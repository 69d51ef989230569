"""Two-factor (allauth.mfa): our adapter, and code forms that count towards the lockout.

A wrong authenticator or recovery code after a correct password counts as one
failed sign-in for the account and the client IP (``users.lockout``), as a wrong
password does: otherwise whoever holds the password could try codes until one
matches. A locked account sees the lockout page at the code step too. The
security log records each wrong code (``users.receivers``).
"""

from typing import Any

from allauth.account.internal.stagekit import clear_login
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.base.forms import AuthenticateForm as AllauthAuthenticateForm
from allauth.mfa.base.forms import ReauthenticateForm as AllauthReauthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from allauth.mfa.webauthn.forms import AddWebAuthnForm as AllauthAddWebAuthnForm
from django import forms
from django.conf import settings
from django.http import HttpRequest

from users import lockout, security
from users.adapters import lockout_response
from users.models import SecurityEvent

# The methods that make a second factor; recovery codes only back them up.
SECOND_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]


def has_second_factor(user: Any) -> bool:
    """Whether the user signs in with an authenticator app or a passkey as well."""
    return bool(is_mfa_enabled(user, SECOND_FACTORS))


# allauth ships no type information, so its base classes are Any to mypy.
class MFAAdapter(DefaultMFAAdapter):  # type: ignore[misc]
    """Name the project, not the request's host, in authenticator apps and passkey prompts."""

    def _get_site_name(self) -> str:
        return str(settings.PROJECT_NAME)


def _refuse_if_locked(request: HttpRequest, email: str, *, signing_in: bool) -> None:
    status = lockout.status(request, email)
    if status.locked:
        if signing_in:
            clear_login(request)  # the half-done sign-in starts over after the lockout
        raise ImmediateHttpResponse(lockout_response(request, status))


def _count_failure(request: HttpRequest, email: str, *, signing_in: bool) -> None:
    status = lockout.register_failure(request, email)
    if status.locked:
        security.record(
            SecurityEvent.Kind.LOCKED_OUT, request=request, email=email, detail="two-factor code"
        )
        if signing_in:
            clear_login(request)
        raise ImmediateHttpResponse(lockout_response(request, status))


class _LockoutCountingMixin:
    """Refuse a locked account before checking the code; count a wrong code as a failure."""

    user: Any
    signing_in = True

    def clean_code(self) -> str:
        request = context.request
        email = str(self.user.email)
        _refuse_if_locked(request, email, signing_in=self.signing_in)
        try:
            code: str = super().clean_code()  # type: ignore[misc]
        except forms.ValidationError:
            _count_failure(request, email, signing_in=self.signing_in)
            raise
        return code


class AuthenticateForm(_LockoutCountingMixin, AllauthAuthenticateForm):  # type: ignore[misc]
    """The code step of sign-in."""


class ReauthenticateForm(_LockoutCountingMixin, AllauthReauthenticateForm):  # type: ignore[misc]
    """Confirming a signed-in session with a code before a sensitive change."""

    signing_in = False


class AddWebAuthnForm(AllauthAddWebAuthnForm):  # type: ignore[misc]
    """A new passkey signs in on its own unless the user unticks it (most devices can)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("passwordless", True)
        super().__init__(*args, **kwargs)
