import re
from io import StringIO
from unittest import mock

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import OperationalError

from common.management.commands.bootstrap import STEPS

STARTER_EMAILS = {"user@test.com", "admin@test.com"}


def bootstrap(*args: str) -> str:
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def no_superuser_env(settings):
    settings.DJANGO_SUPERUSER_EMAIL = ""
    settings.DJANGO_SUPERUSER_PASSWORD = ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_superuser_env")
def test_bootstrap_twice_creates_the_starter_accounts_once_with_verified_emails():
    """transaction=True: bootstrap runs migrate and createcachetable, which commit."""
    first = bootstrap("--skip-collectstatic")
    second = bootstrap("--skip-collectstatic")

    user_model = get_user_model()
    assert set(user_model.objects.values_list("email", flat=True)) == STARTER_EMAILS
    for email in STARTER_EMAILS:
        address = EmailAddress.objects.get(email=email)
        assert address.verified
        assert address.primary
    admin = user_model.objects.get(email="admin@test.com")
    assert admin.is_staff
    assert admin.is_superuser
    assert admin.check_password("adminpasswd")
    regular = user_model.objects.get(email="user@test.com")
    assert not regular.is_staff
    assert regular.check_password("userpasswd")
    assert "created user@test.com, admin@test.com" in first
    assert "starter accounts: already exist" in second
    # Every step says how long it took, so a slow start shows where the time went.
    steps = [line for line in second.splitlines() if line.startswith("bootstrap: ")]
    assert len(steps) == len(STEPS)
    assert all(re.search(r"\(\d+\.\d s\)$", line) for line in steps), steps


@pytest.mark.django_db(transaction=True)
def test_bootstrap_creates_the_superuser_from_the_environment(settings):
    settings.DJANGO_SUPERUSER_EMAIL = "owner@example.com"
    settings.DJANGO_SUPERUSER_PASSWORD = "s3cret-pass"
    settings.IS_PRODUCTION = True

    bootstrap("--skip-collectstatic")
    bootstrap("--skip-collectstatic")

    owner = get_user_model().objects.get(email="owner@example.com")
    assert owner.is_superuser
    assert owner.check_password("s3cret-pass")
    assert EmailAddress.objects.get(user=owner).verified


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_superuser_env")
def test_bootstrap_creates_no_starter_accounts_in_production(settings):
    settings.IS_PRODUCTION = True
    output = bootstrap("--skip-collectstatic")
    assert not get_user_model().objects.exists()
    assert "starter accounts: skipped (production)" in output


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_superuser_env")
def test_bootstrap_collects_static_files_unless_told_to_skip(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    bootstrap("--skip-collectstatic")
    assert not settings.STATIC_ROOT.exists()
    bootstrap()
    assert (settings.STATIC_ROOT / "vendor" / "bulma" / "bulma.min.css").is_file()


def test_bootstrap_gives_up_with_one_clear_error_when_the_database_never_answers(monkeypatch):
    attempts: list[float] = []
    monkeypatch.setattr("common.management.commands.bootstrap.time.sleep", attempts.append)
    with (
        mock.patch(
            "django.db.backends.base.base.BaseDatabaseWrapper.ensure_connection",
            side_effect=OperationalError("connection refused"),
        ),
        pytest.raises(CommandError, match="Database unreachable after 10 attempts"),
    ):
        bootstrap("--skip-collectstatic")
    assert len(attempts) == 9


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_superuser_env")
def test_bootstrap_refuses_production_while_a_starter_account_can_sign_in(settings):
    bootstrap("--skip-collectstatic")
    settings.IS_PRODUCTION = True
    with pytest.raises(CommandError, match=r"user@test\.com, admin@test\.com exist"):
        bootstrap("--skip-collectstatic")

    user_model = get_user_model()
    for user in user_model.objects.filter(email__in=STARTER_EMAILS):
        user.set_unusable_password()
        user.save()
    assert "starter accounts: skipped (production)" in bootstrap("--skip-collectstatic")
