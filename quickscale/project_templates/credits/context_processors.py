"""Template context for every page: is the credit UI on, and the user's balance."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from credits import ledger
from users.models import CustomUser


def credits(request: HttpRequest) -> dict[str, Any]:
    """Expose ``CREDIT_SYSTEM_ENABLED`` and, lazily, the signed-in user's balance.

    The balance is queried only when a template reads ``credit_balance`` (the
    navbar does, once per page).
    """
    enabled = bool(settings.CREDIT_SYSTEM_ENABLED)
    context: dict[str, Any] = {"CREDIT_SYSTEM_ENABLED": enabled}
    user = getattr(request, "user", None)
    if enabled and isinstance(user, CustomUser):
        context["credit_balance"] = SimpleLazyObject(lambda: ledger.balance(user))
    return context
