from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from users.models import CustomUser
from users.startup import refuse_starter_accounts

pytestmark = pytest.mark.django_db


def starter_accounts() -> str:
    out = StringIO()
    call_command("starter_accounts", stdout=out)
    return out.getvalue().strip()


def test_production_refuses_with_the_same_words_as_the_app_start(settings):
    """bootstrap (through the command) and core.asgi use one guard, so one remedy."""
    CustomUser.objects.create_user(email="ADMIN@test.com", password="adminpasswd")
    settings.IS_PRODUCTION = True

    with pytest.raises(CommandError) as by_command:
        starter_accounts()
    with pytest.raises(ImproperlyConfigured) as at_start:
        refuse_starter_accounts()

    assert str(by_command.value) == str(at_start.value)
    assert "admin@test.com" in str(at_start.value)
    assert list(CustomUser.objects.values_list("email", flat=True)) == ["ADMIN@test.com"]


def test_production_creates_no_starter_account(settings):
    settings.IS_PRODUCTION = True
    assert starter_accounts() == "skipped (production)"
    assert not CustomUser.objects.exists()
