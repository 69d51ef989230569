"""Writes of the public pages."""

import logging
import smtplib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from public.models import ContactMessage

logger = logging.getLogger(__name__)


def contact_message_create(
    *, name: str, email: str, subject: str, message: str, ip_address: str | None
) -> ContactMessage:
    """Store the message, then email it to active staff; a mail failure is only logged.

    The message is safe in the database whatever the mail server does, so the
    sender is told it arrived; staff also find it in the admin.
    """
    stored = ContactMessage.objects.create(
        name=name, email=email, subject=subject, message=message, ip_address=ip_address
    )
    staff = list(
        get_user_model()
        ._default_manager.filter(is_staff=True, is_active=True)
        .values_list("email", flat=True)
    )
    if staff:
        try:
            send_mail(
                subject=f"[{settings.PROJECT_NAME}] Contact: {subject}",
                message=f"From: {name} <{email}>\n\n{message}\n",
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=staff,
            )
        except (smtplib.SMTPException, OSError) as error:
            logger.error(
                "contact message stored but not emailed",
                extra={"contact_message_id": stored.pk, "error": str(error)},
            )
    return stored
