"""Run by test_enumeration.py in a fresh process whose settings are production's.

Drives sign-up, sign-in and password reset once for an address that has an
account and once for one that has none, and prints what each visitor saw (the
answers, with the typed address and per-request tokens blanked) and the mail
that went out (queued by the requests, sent here as the worker would), as JSON
on the last line of output.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import django

django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from django.core import mail  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from common.testing.mail import send_queued_emails  # noqa: E402
from users.models import CustomUser  # noqa: E402

KNOWN = "owner@example.com"
PASSWORD = "Another-pass-99"
# Per-request CSRF tokens: in forms, and in the htmx headers on <body>.
TOKEN = re.compile(r'(name="csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]+')


def _client(ip: str) -> Client:
    return Client(HTTP_HOST="example.com", REMOTE_ADDR=ip)


def _seen(response: Any, client: Client, email: str) -> dict[str, Any]:
    """What the visitor sees: status, where it sends them, and the page they land on."""
    location = response.headers.get("Location", "")
    page = client.get(location, secure=True) if location else response
    text = TOKEN.sub(r"\1-", page.content.decode()).replace(email, "<email>")
    return {"status": response.status_code, "location": location, "page": text}


def _flows(emails: dict[str, str], ip: str) -> dict[str, Any]:
    """Each flow with its own address: a sign-up must not create the account a later flow uses."""
    email = emails["signup"]
    visitor = _client(ip)
    signup = visitor.post(
        reverse("account_signup"),
        {"email": email, "password1": PASSWORD, "password2": PASSWORD},
        secure=True,
    )
    seen = {"signup": _seen(signup, visitor, email)}
    email = emails["login"]
    visitor = _client(ip)
    login = visitor.post(
        reverse("account_login"), {"login": email, "password": "Wrong-pass-123"}, secure=True
    )
    seen["login"] = _seen(login, visitor, email)
    email = emails["reset"]
    visitor = _client(ip)
    reset = visitor.post(reverse("account_reset_password"), {"email": email}, secure=True)
    seen["reset"] = _seen(reset, visitor, email)
    return seen


setup_test_environment()  # mail goes to django.core.mail.outbox instead of SMTP
# Pages link hashed static names, which need collectstatic; plain names say the same.
override_settings(
    STORAGES={
        **django.conf.settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
).enable()
owner = CustomUser.objects.create_user(email=KNOWN, password="Correct-horse-42")
EmailAddress.objects.create(user=owner, email=KNOWN, verified=True, primary=True)

known = _flows(dict.fromkeys(("signup", "login", "reset"), KNOWN), "198.51.100.1")
unknown = _flows(
    {flow: f"nobody-{flow}@example.com" for flow in ("signup", "login", "reset")}, "198.51.100.2"
)
send_queued_emails()  # the requests queued their emails; play the worker that sends them
sys.stdout.write(
    json.dumps(
        {
            "verification": django.conf.settings.ACCOUNT_EMAIL_VERIFICATION,
            "known": known,
            "unknown": unknown,
            "mail": [{"to": message.to, "subject": message.subject} for message in mail.outbox],
            "accounts_with_known_email": CustomUser.objects.filter(email__iexact=KNOWN).count(),
        }
    )
    + "\n"
)
