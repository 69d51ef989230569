"""Templated emails: one plain-text and one HTML body, named after the project.

An email is built as a :class:`RenderedEmail` (plain strings, nothing else) and
handed to the mail server by :func:`deliver`. Emails decided during a request
(receipts, low balance, account links) are not sent there: the request records
them with ``common.mail_tasks.email_queue`` and a worker sends them, so a slow
or refusing mail server never slows a request and a failure is retried.
:func:`send_templated` sends at once; it is for code that already runs outside
any request and retries on its own (the expiry reminder run).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

# What a mail server that refuses, hangs (EMAIL_TIMEOUT) or cannot be reached raises.
SendError = (smtplib.SMTPException, OSError)


@dataclass(frozen=True)
class RenderedEmail:
    """An email ready to send: addresses and bodies, all plain strings."""

    to: tuple[str, ...]
    subject: str
    body: str
    html: str = ""
    from_email: str = ""
    # Extra header lines, e.g. List-Unsubscribe (RFC 2369) and List-Unsubscribe-Post (RFC 8058).
    headers: tuple[tuple[str, str], ...] = ()

    def message(self) -> EmailMultiAlternatives:
        """The Django message: ``body`` as text, ``html`` as its alternative part."""
        message = EmailMultiAlternatives(
            subject=self.subject,
            body=self.body,
            from_email=self.from_email or settings.DEFAULT_FROM_EMAIL,
            to=list(self.to),
            headers=dict(self.headers),
        )
        if self.html:
            message.attach_alternative(self.html, "text/html")
        return message


def absolute_url(path: str) -> str:
    """``path`` on the site's address (``SITE_URL``): emails are read outside the site."""
    return str(getattr(settings, "SITE_URL", "")).rstrip("/") + path


def render_templated(
    template: str,
    *,
    to: str,
    subject: str,
    context: dict[str, Any],
    headers: tuple[tuple[str, str], ...] = (),
) -> RenderedEmail:
    """Render ``<template>.txt`` and ``<template>.html`` for ``to``.

    The subject is prefixed with ``[PROJECT_NAME]`` and the templates get
    ``PROJECT_NAME`` besides ``context``.
    """
    project_name = settings.PROJECT_NAME
    full_context = {"PROJECT_NAME": project_name, **context}
    return RenderedEmail(
        to=(to,),
        subject=f"[{project_name}] {subject}",
        body=render_to_string(f"{template}.txt", full_context),
        html=render_to_string(f"{template}.html", full_context),
        headers=headers,
    )


def prerendered(
    *, to: Sequence[str], subject: str, body: str, html: str = "", from_email: str = ""
) -> RenderedEmail:
    """An email rendered before it was queued (allauth's, whose context holds objects)."""
    return RenderedEmail(to=tuple(to), subject=subject, body=body, html=html, from_email=from_email)


def deliver(email: RenderedEmail) -> None:
    """Hand ``email`` to the mail server; raises what the server or network raised.

    The connection gives up after ``EMAIL_TIMEOUT`` seconds of silence, so a hung
    server cannot hold the caller forever.
    """
    email.message().send()


def send_templated(
    template: str,
    *,
    to: str,
    subject: str,
    context: dict[str, Any],
    headers: tuple[tuple[str, str], ...] = (),
) -> bool:
    """Render and send at once; True when the server took it, False (logged) when not."""
    try:
        deliver(
            render_templated(template, to=to, subject=subject, context=context, headers=headers)
        )
    except SendError as error:
        logger.error("email not sent", extra={"template": template, "error": str(error)})
        return False
    return True
