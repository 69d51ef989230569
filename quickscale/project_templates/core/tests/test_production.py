"""Production hardening, checked the way a deployment runs: in a fresh process."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from common.testing.database import session_database_url
from common.testing.process import run_python
from common.testing.production import production_env
from users.startup import refuse_starter_accounts


def test_the_deploy_check_passes_at_warning_level_with_production_values():
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env()
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_production_sends_the_security_headers():
    code = (
        "import django; django.setup();"
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0,"
        " s.SECURE_SSL_REDIRECT, s.X_FRAME_OPTIONS, s.SECURE_REFERRER_POLICY,"
        " 'script-src' in s.CONTENT_SECURITY_POLICY)"
    )
    env = production_env(DJANGO_SETTINGS_MODULE="core.settings")
    result = run_python(["-c", code], env)
    assert result.stdout.split() == ["True", "True", "True", "True", "DENY", "same-origin", "True"]


@pytest.mark.django_db(transaction=True)  # the started process must see the committed account
@pytest.mark.parametrize("email", ["user@test.com", "ADMIN@test.com"])
def test_the_app_refuses_to_start_while_a_starter_account_has_a_usable_password(email):
    from users.models import CustomUser

    user = CustomUser.objects.create_user(email=email, password="userpasswd")
    env = production_env(DATABASE_URL=session_database_url())
    result = run_python(["-c", "import core.asgi"], env)
    assert result.returncode != 0
    assert "starter account" in result.stderr and email.lower() in result.stderr

    user.set_unusable_password()
    user.save()
    assert run_python(["-c", "import core.asgi"], env).returncode == 0


@pytest.mark.django_db
def test_the_starter_guard_ignores_development(settings):
    from users.models import CustomUser

    CustomUser.objects.create_user(email="user@test.com", password="userpasswd")
    settings.IS_PRODUCTION = False
    refuse_starter_accounts()
    settings.IS_PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match=r"user@test\.com"):
        refuse_starter_accounts()
