"""Which optional emails a user receives, and the one-click unsubscribe link in each.

Low-balance, expiry and renewal emails can be switched off on the profile or
from the link in the email itself; receipts, refunds, failed payments and
security emails cannot. The link carries a signed token (user and topic, no
expiry: an old email's link must still work), so it works without signing in.
Mail clients that support RFC 8058 unsubscribe with one POST to that link,
announced by the ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` headers.
"""

from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db import models
from django.urls import reverse

from common.email import absolute_url
from users.models import CustomUser, Profile

_SALT = "users.email_preferences.unsubscribe"


class Topic(models.TextChoices):
    """An email a user may switch off; the value names its Profile field's suffix."""

    LOW_BALANCE = "low_balance", "Low balance"
    EXPIRY = "expiry", "Credits about to expire"
    RENEWAL = "renewal", "Plan renewal reminders"


def field_name(topic: Topic) -> str:
    """The Profile field holding the user's choice for ``topic``."""
    return f"email_{topic.value}"


def wants_email(user: CustomUser, topic: Topic) -> bool:
    """Whether ``user`` receives ``topic`` emails (yes until they switch them off)."""
    choice = Profile.objects.filter(user=user).values_list(field_name(topic), flat=True).first()
    return choice is None or bool(choice)


def unsubscribe_token(user: CustomUser, topic: Topic) -> str:
    """A token naming the user and topic, signed with SECRET_KEY."""
    return signing.dumps({"u": user.pk, "t": topic.value}, salt=_SALT, compress=True)


@dataclass(frozen=True)
class Unsubscribe:
    """What a valid token asks: switch ``topic`` off for ``user``."""

    user: CustomUser
    topic: Topic


def read_token(token: str) -> Unsubscribe | None:
    """The request a token carries; None when it is forged, damaged or its account is gone."""
    try:
        data: Any = signing.loads(token, salt=_SALT)
        topic = Topic(data["t"])
        user_id = int(data["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    user = CustomUser.objects.filter(pk=user_id, is_active=True).first()
    return Unsubscribe(user=user, topic=topic) if user is not None else None


def unsubscribe_url(user: CustomUser, topic: Topic) -> str:
    """The absolute one-click unsubscribe address for ``topic`` emails to ``user``."""
    return absolute_url(reverse("users:unsubscribe", args=[unsubscribe_token(user, topic)]))


def unsubscribe_headers(url: str) -> tuple[tuple[str, str], ...]:
    """The RFC 2369 / RFC 8058 headers announcing ``url`` as a one-click unsubscribe."""
    return (
        ("List-Unsubscribe", f"<{url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )
