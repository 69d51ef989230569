"""The security log: one database row and one structured log line per event."""

import logging
from typing import Any

from django.http import HttpRequest

from common.client_ip import client_ip
from users.models import SecurityEvent

logger = logging.getLogger("users.security")

Kind = SecurityEvent.Kind

# Logged at INFO; every other event is a WARNING worth a look.
_ROUTINE = {Kind.LOGIN_SUCCEEDED, Kind.MFA_USED}


def record(
    kind: str,
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    email: str = "",
    detail: str = "",
) -> SecurityEvent:
    """Write a ``SecurityEvent`` and log it with structured fields."""
    account = user if user is not None and user.is_authenticated else None
    email = email or (getattr(account, "email", "") if account else "")
    ip = client_ip(request) if request is not None else None
    agent = request.headers.get("user-agent", "")[:300] if request is not None else ""
    event = SecurityEvent.objects.create(
        kind=kind,
        user=account,
        email=email[:254],
        ip_address=ip,
        user_agent=agent,
        detail=detail[:300],
    )
    level = logging.INFO if kind in _ROUTINE else logging.WARNING
    logger.log(
        level,
        "security event %s",
        kind,
        extra={
            "event": kind,
            "user_id": account.pk if account else None,
            "email": event.email,
            "ip": ip,
            "detail": event.detail,
        },
    )
    return event
