"""Refuse to serve in production while a starter account can sign in.

``core.asgi`` and ``core.wsgi`` call :func:`refuse_starter_accounts` when the app
starts, so the guard holds however the server is launched (bootstrap refuses too).
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.management.commands.bootstrap import STARTER_ACCOUNTS
from users.models import CustomUser


def starter_accounts_with_passwords() -> list[str]:
    """Return the starter emails that exist with a usable password."""
    emails = [email for email, _password, _is_admin in STARTER_ACCOUNTS]
    found = []
    for email in emails:
        user = CustomUser.objects.filter(email__iexact=email).first()
        if user is not None and user.has_usable_password():
            found.append(email)
    return found


def refuse_starter_accounts() -> None:
    """Raise ImproperlyConfigured in production while a starter account is usable."""
    if not settings.IS_PRODUCTION:
        return
    found = starter_accounts_with_passwords()
    if found:
        raise ImproperlyConfigured(
            f"Refusing to start in production: starter account(s) {', '.join(found)} "
            "exist with a usable password. Delete them or set an unusable password "
            "(`manage.py shell`), then start again."
        )
