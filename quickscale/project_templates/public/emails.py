"""The contact form's email to staff, built by the worker from the stored message.

Queued by ``public.services.contact_message_create`` in the transaction that
stores the message; the staff list is read when it is sent.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from common.email import RenderedEmail
from public.models import ContactMessage


def contact_message_email(contact_message_id: int) -> RenderedEmail | None:
    """The message, to every active staff member; None when there is nobody to tell."""
    stored = ContactMessage.objects.filter(pk=contact_message_id).first()
    staff = list(
        get_user_model()
        ._default_manager.filter(is_staff=True, is_active=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
    )
    if stored is None or not staff:
        return None
    return RenderedEmail(
        to=tuple(staff),
        subject=f"[{settings.PROJECT_NAME}] Contact: {stored.subject}",
        body=f"From: {stored.name} <{stored.email}>\n\n{stored.message}\n",
    )
