"""Starter accounts: created for development, refused in production.

Their passwords are public (the README lists them), so a database copied from
development must not go live with them. :func:`refuse_starter_accounts` holds
that in every way production starts: ``core.asgi`` and ``core.wsgi`` call it
when the app loads, and ``bootstrap`` runs ``manage.py starter_accounts``,
which calls it too.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.accounts import ensure_user
from users.models import CustomUser

# Development-only accounts: (email, password, is_admin).
STARTER_ACCOUNTS = (
    ("user@test.com", "userpasswd", False),
    ("admin@test.com", "adminpasswd", True),
)


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


def create_starter_accounts() -> list[str]:
    """Create the missing starter accounts with verified emails; return the emails created."""
    return [
        email
        for email, password, is_admin in STARTER_ACCOUNTS
        if ensure_user(email, password, is_admin=is_admin)
    ]
