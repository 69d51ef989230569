"""Development email backend: append every message to one log file.

The file is ``settings.MAIL_LOG_PATH`` (``.quickscale/logs/mail.log`` by default),
so ``quickscale logs mail -f`` shows each new message as it is sent. Each entry
lists the headers, then the plain-text body, then any HTML alternative, so the
verification link is readable at the top.
"""

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend

SEPARATOR = "=" * 72

# One lock per process: uvicorn may send from several threads at once, and
# interleaved writes would corrupt entries.
_write_lock = threading.Lock()


def _format_message(message: EmailMessage) -> str:
    headers = {
        "Date": datetime.now(tz=UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "From": message.from_email,
        "To": ", ".join(message.to),
        "Cc": ", ".join(message.cc),
        "Bcc": ", ".join(message.bcc),
        "Reply-To": ", ".join(message.reply_to),
        "Subject": message.subject,
        **{str(k): str(v) for k, v in message.extra_headers.items()},
    }
    lines = [SEPARATOR, *(f"{k}: {v}" for k, v in headers.items() if v), ""]
    lines.append(str(message.body))
    if isinstance(message, EmailMultiAlternatives):
        for content, mimetype in message.alternatives:
            lines += ["", f"--- alternative part: {mimetype} ---", str(content)]
    for attachment in message.attachments:
        filename = attachment[0] if isinstance(attachment, tuple) else attachment.get_filename()
        lines.append(f"--- attachment: {filename} ---")
    lines += ["", ""]
    return "\n".join(lines)


class EmailBackend(BaseEmailBackend):
    """Append sent messages to ``settings.MAIL_LOG_PATH``, creating its folder."""

    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.path = Path(kwargs.get("file_path") or settings.MAIL_LOG_PATH)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Write each message; return how many were written."""
        if not email_messages:
            return 0
        text = "".join(_format_message(message) for message in email_messages)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _write_lock, self.path.open("a", encoding="utf-8") as log:
                log.write(text)
        except OSError:
            if not self.fail_silently:
                raise
            return 0
        return len(email_messages)
