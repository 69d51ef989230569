"""Signal receivers that write the security log (connected in UsersConfig.ready)."""

from typing import Any

from allauth.account import signals as allauth_signals
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from users import lockout, security
from users.models import SecurityEvent

Kind = SecurityEvent.Kind


@receiver(allauth_signals.user_logged_in)
def _logged_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    lockout.clear_account(user.email)
    security.record(Kind.LOGIN_SUCCEEDED, request=request, user=user)


@receiver(user_login_failed)
def _login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    email = str(credentials.get("email") or credentials.get("username") or "")
    security.record(Kind.LOGIN_FAILED, request=request, email=email)


@receiver(allauth_signals.password_changed)
def _password_changed(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    security.record(Kind.PASSWORD_CHANGED, request=request, user=user)


@receiver(allauth_signals.password_set)
def _password_set(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    security.record(Kind.PASSWORD_SET, request=request, user=user)


@receiver(allauth_signals.password_reset)
def _password_reset(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    lockout.clear_after_reset(request, user.email)
    security.record(Kind.PASSWORD_RESET, request=request, user=user)


@receiver(allauth_signals.email_changed)
def _email_changed(
    sender: Any,
    request: HttpRequest,
    user: Any,
    from_email_address: Any,
    to_email_address: Any,
    **kwargs: Any,
) -> None:
    old = from_email_address.email if from_email_address else ""
    security.record(
        Kind.EMAIL_CHANGED,
        request=request,
        user=user,
        email=to_email_address.email,
        detail=f"from {old}" if old else "",
    )


@receiver(allauth_signals.email_added)
def _email_added(
    sender: Any, request: HttpRequest, user: Any, email_address: Any, **kwargs: Any
) -> None:
    security.record(Kind.EMAIL_ADDED, request=request, user=user, detail=email_address.email)


@receiver(allauth_signals.email_removed)
def _email_removed(
    sender: Any, request: HttpRequest, user: Any, email_address: Any, **kwargs: Any
) -> None:
    security.record(Kind.EMAIL_REMOVED, request=request, user=user, detail=email_address.email)


# --------------------------------------------------------------------------- two-factor


_METHOD_NAMES = {
    Authenticator.Type.TOTP: "authenticator app",
    Authenticator.Type.RECOVERY_CODES: "recovery codes",
}


def _method(authenticator: Any) -> str:
    """How the log names an authenticator: its kind, and a passkey's name."""
    if authenticator.type == Authenticator.Type.WEBAUTHN:
        return f"passkey {authenticator.wrap().name}"[:300]
    return _METHOD_NAMES.get(authenticator.type, str(authenticator.type))


@receiver(mfa_signals.authenticator_added)
def _mfa_added(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kwargs: Any
) -> None:
    security.record(Kind.MFA_ENABLED, request=request, user=user, detail=_method(authenticator))


@receiver(mfa_signals.authenticator_removed)
def _mfa_removed(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kwargs: Any
) -> None:
    security.record(Kind.MFA_DISABLED, request=request, user=user, detail=_method(authenticator))


@receiver(mfa_signals.authenticator_reset)
def _mfa_reset(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kwargs: Any
) -> None:
    security.record(Kind.MFA_RECOVERY_CODES_REGENERATED, request=request, user=user)


@receiver(mfa_signals.authenticator_used)
def _mfa_used(
    sender: Any,
    request: HttpRequest,
    user: Any,
    authenticator: Any,
    reauthenticated: bool = False,
    passwordless: bool = False,
    **kwargs: Any,
) -> None:
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        # The signal's instance predates the code being marked used: read it again.
        fresh = Authenticator.objects.get(pk=authenticator.pk)
        left = len(fresh.wrap().get_unused_codes())
        security.record(
            Kind.MFA_RECOVERY_CODE_USED, request=request, user=user, detail=f"{left} left"
        )
        return
    how = "passwordless sign-in" if passwordless else "reauthentication" if reauthenticated else ""
    detail = f"{_method(authenticator)}, {how}" if how else _method(authenticator)
    security.record(Kind.MFA_USED, request=request, user=user, detail=detail)


@receiver(mfa_signals.authentication_failed)
def _mfa_failed(
    sender: Any, request: HttpRequest, user: Any, authenticator: Any, **kwargs: Any
) -> None:
    security.record(Kind.MFA_FAILED, request=request, user=user, detail=_method(authenticator))
