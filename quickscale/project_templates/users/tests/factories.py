"""Accounts for the tests of every app (users is low in the layers, so all may import it)."""

import itertools
from typing import Any

from allauth.account.models import EmailAddress

from users.models import CustomUser

PASSWORD = "Correct-horse-42"
_numbers = itertools.count(1)


def make_user(
    email: str | None = None,
    *,
    password: str | None = PASSWORD,
    verified: bool = True,
    **fields: Any,
) -> CustomUser:
    """An account that signs in with ``password`` (None: no usable password).

    Its email is unique unless given, and is its primary address, verified
    unless ``verified=False``. ``fields`` go to the model (``is_staff=True``).
    """
    email = email or f"user{next(_numbers)}@example.com"
    user = CustomUser.objects.create_user(email=email, password=password, **fields)
    EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
    return user
