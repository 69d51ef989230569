"""Hooks the credits app connects in ``CreditsConfig.ready``.

The sign-up grant hangs on ``post_save`` of the user model (``created`` only),
not on allauth's ``user_signed_up``: every way an account comes to exist (the
sign-up form, the admin, ``createsuperuser``, bootstrap's starter accounts)
gets the same starting balance, and the grant commits or rolls back with the
account itself. Its reference is ``signup:<user id>``, so it is granted once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from credits import ledger
from credits.exceptions import InvalidAmount
from credits.models import CreditLot
from users.models import CustomUser


def grant_signup_credits(
    sender: type[CustomUser], instance: CustomUser, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """Grant ``DEFAULT_CREDIT_BALANCE`` to a new account when it is above 0."""
    amount = Decimal(settings.DEFAULT_CREDIT_BALANCE)
    if not created or raw or amount <= 0:
        return
    ledger.grant(
        instance,
        amount,
        source=CreditLot.Source.SIGNUP,
        reference=f"signup:{instance.pk}",
        description="Welcome credits",
    )


def check_credit_settings(**kwargs: Any) -> list[CheckMessage]:
    """Refuse a DEFAULT_CREDIT_BALANCE the ledger would reject at the first sign-up."""
    errors: list[CheckMessage] = []
    amount = Decimal(settings.DEFAULT_CREDIT_BALANCE)
    if amount != 0:
        try:
            ledger._amount(amount)
        except InvalidAmount as error:
            errors.append(
                Error(
                    f"DEFAULT_CREDIT_BALANCE={amount} is not usable: {error}",
                    hint="Use 0 (no sign-up credits) or a positive number with at most 2 decimals.",
                    id="credits.E001",
                )
            )
    return errors
