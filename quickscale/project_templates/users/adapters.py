"""QuickScale's own account decisions; everything else is allauth's default."""

import logging
import smtplib
from types import SimpleNamespace
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest
from django.template.response import TemplateResponse

from users import lockout, security
from users.models import SecurityEvent

logger = logging.getLogger(__name__)


def lockout_response(request: HttpRequest, status: lockout.LockoutStatus) -> TemplateResponse:
    """The page a locked account or IP sees instead of the sign-in form."""
    response = TemplateResponse(
        request,
        "account/lockout.html",
        {"until": status.until, "minutes": settings.ACCOUNT_LOCKOUT_MINUTES},
        status=429,
    )
    response.render()
    return response


# allauth ships no type information, so its base class is Any to mypy.
class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    """Signup open or closed from the environment, lockout, and safe email sending."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(getattr(settings, "ACCOUNT_SIGNUP_OPEN", True))

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """Refuse a locked account or IP before any password is checked (cheap)."""
        status = lockout.status(request, str(credentials.get("email", "")))
        if status.locked:
            raise ImmediateHttpResponse(lockout_response(request, status))
        super().pre_authenticate(request, **credentials)

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        """Count the failure; the one that reaches the limit gets the lockout page."""
        email = str(credentials.get("email", ""))
        status = lockout.register_failure(request, email)
        if status.locked:
            security.record(SecurityEvent.Kind.LOCKED_OUT, request=request, email=email)
            raise ImmediateHttpResponse(lockout_response(request, status))

    def format_email_subject(self, subject: str) -> str:
        """Prefix subjects with the project's name, read when the email is sent."""
        return f"[{settings.PROJECT_NAME}] {subject}"

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """Send with the project's name; a failure is logged and told, never a 500.

        Without django.contrib.sites allauth names the site after the request's host
        ("127.0.0.1:8000"); emails say PROJECT_NAME instead.
        """
        request = getattr(self, "request", None) or context.get("request")
        domain = request.get_host() if request is not None else ""
        context = {
            "project_name": settings.PROJECT_NAME,
            "current_site": SimpleNamespace(name=settings.PROJECT_NAME, domain=domain),
            **context,
        }
        try:
            super().send_mail(template_prefix, email, context)
        except (smtplib.SMTPException, OSError) as error:
            logger.error(
                "email could not be sent",
                extra={"template": template_prefix, "to": email, "error": str(error)},
            )
            if request is not None:
                messages.error(
                    request,
                    f"We could not send the email to {email} just now. "
                    "Please try again in a few minutes; if it keeps failing, contact us.",
                )
