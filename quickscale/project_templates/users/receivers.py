"""Signal receivers that write the security log (connected in UsersConfig.ready)."""

from typing import Any

from allauth.account import signals as allauth_signals
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
