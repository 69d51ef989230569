"""QuickScale's own account decisions; everything else is allauth's default."""

import uuid
from types import SimpleNamespace
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.template.response import TemplateResponse

from common.email import prerendered
from common.mail_tasks import email_queue
from users import lockout, security
from users.models import SecurityEvent


def lockout_response(request: HttpRequest, status: lockout.LockoutStatus) -> TemplateResponse:
    """The page a locked account or IP sees instead of the sign-in form."""
    response = TemplateResponse(
        request,
        "account/lockout.html",
        {
            "until": status.until,
            "minutes": settings.ACCOUNT_LOCKOUT_MINUTES,
            "attempts": settings.ACCOUNT_LOCKOUT_ATTEMPTS,
        },
        status=429,
    )
    response.render()
    return response


# allauth ships no type information, so its base class is Any to mypy.
class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    """Signup open or closed from the environment, lockout, and emails through the queue."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(getattr(settings, "ACCOUNT_SIGNUP_OPEN", True))

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        """Staff land on STAFF_LOGIN_REDIRECT (the admin dashboard), others on the app home.

        allauth uses it after sign-in, sign-up and email confirmation; a ``next``
        the request carries still wins.
        """
        staff_url = str(getattr(settings, "STAFF_LOGIN_REDIRECT", "") or "")
        if staff_url and request.user.is_staff:
            return str(resolve_url(staff_url))
        return str(super().get_login_redirect_url(request))

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
        """Prefix subjects with the project's name."""
        return f"[{settings.PROJECT_NAME}] {subject}"

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """Render now, send from the outbox: a slow mail server never slows sign-up.

        allauth's context holds objects (the request, the user), so the email is
        rendered here, as allauth renders it, and queued as plain strings; its
        link is a secret, erased from the queue once sent. A refused send is
        retried by the worker. Without django.contrib.sites allauth names the
        site after the request's host ("127.0.0.1:8000"); emails say
        PROJECT_NAME instead.
        """
        request = getattr(self, "request", None) or context.get("request")
        domain = request.get_host() if request is not None else ""
        context = {
            "request": request,
            "email": email,
            "project_name": settings.PROJECT_NAME,
            "current_site": SimpleNamespace(name=settings.PROJECT_NAME, domain=domain),
            **context,
        }
        message = self.render_mail(template_prefix, email, context)
        html = next(
            (
                str(content)
                for content, mimetype in getattr(message, "alternatives", [])
                if mimetype == "text/html"
            ),
            "",
        )
        text = str(message.body)
        if message.content_subtype == "html":  # allauth's HTML-only emails
            text, html = "", text
        email_queue(
            prerendered,
            key=f"account:{template_prefix.rsplit('/', 1)[-1]}:{uuid.uuid4().hex}",
            secret=True,
            to=list(message.to),
            subject=str(message.subject),
            body=text,
            html=html,
            from_email=str(message.from_email),
        )
