"""Templated emails: one plain-text and one HTML body, named after the project.

Every email the apps send themselves goes through :func:`send_templated`
(allauth's account emails go through ``users.adapters``). A mail server that
refuses or cannot be reached is logged and reported as ``False``, never raised:
the email follows a change that is already committed (a payment, a consume)
and must not undo it or fail the request that made it.
"""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def absolute_url(path: str) -> str:
    """``path`` on the site's address (``SITE_URL``): emails are read outside the site."""
    return str(getattr(settings, "SITE_URL", "")).rstrip("/") + path


def send_templated(template: str, *, to: str, subject: str, context: dict[str, Any]) -> bool:
    """Render ``<template>.txt`` and ``<template>.html`` and send them to ``to``.

    The subject is prefixed with ``[PROJECT_NAME]`` and the templates get
    ``PROJECT_NAME`` besides ``context``. Returns True when the mail server took
    the message, False when sending failed (logged with the template and error).
    """
    project_name = settings.PROJECT_NAME
    full_context = {"PROJECT_NAME": project_name, **context}
    message = EmailMultiAlternatives(
        subject=f"[{project_name}] {subject}",
        body=render_to_string(f"{template}.txt", full_context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(render_to_string(f"{template}.html", full_context), "text/html")
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as error:
        logger.error("email not sent", extra={"template": template, "error": str(error)})
        return False
    return True
