"""Accounts that start-up work creates: the superuser from the environment, starter accounts."""

from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction


def _ensure_verified_email(user: AbstractBaseUser, email: str) -> None:
    """Give ``user`` a verified primary address, so mandatory verification never blocks it."""
    address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
    if address is None:
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    elif not (address.verified and address.primary):
        address.verified = True
        address.primary = True
        address.save(update_fields=["verified", "primary"])


def ensure_user(email: str, password: str, *, is_admin: bool) -> bool:
    """Create the account unless one with this email exists; return True when created.

    An existing account is left as it is (its owner may have changed the password).
    """
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model._default_manager.filter(email__iexact=email).first()
        created = user is None
        if user is None:
            manager: Any = user_model._default_manager
            create = manager.create_superuser if is_admin else manager.create_user
            user = create(email=email, password=password)
        _ensure_verified_email(user, email)
    return created
