"""Writes of the public pages."""

from django.db import transaction

from common.mail_tasks import email_queue
from public.emails import contact_message_email
from public.models import ContactMessage


@transaction.atomic
def contact_message_create(
    *, name: str, email: str, subject: str, message: str, ip_address: str | None
) -> ContactMessage:
    """Store the message and queue its email to active staff, together.

    The message is safe in the database whatever the mail server does, so the
    sender is told it arrived; the worker emails staff (and retries a refused
    send), and staff also find it in the admin.
    """
    stored = ContactMessage.objects.create(
        name=name, email=email, subject=subject, message=message, ip_address=ip_address
    )
    email_queue(contact_message_email, key=f"contact:{stored.pk}", contact_message_id=stored.pk)
    return stored
