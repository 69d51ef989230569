"""QuickScale's own account decisions; everything else is allauth's default."""

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


# allauth ships no type information, so its base class is Any to mypy.
class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    """Open or close signup from the environment (ACCOUNT_SIGNUP_OPEN)."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(getattr(settings, "ACCOUNT_SIGNUP_OPEN", True))
