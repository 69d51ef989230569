import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from common.testing.process import run_python

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_check(**env: str) -> subprocess.CompletedProcess[str]:
    return run_python(["manage.py", "check"], {**os.environ, **env}, timeout=60)


def test_production_with_unsafe_values_refuses_to_start_with_a_clear_message():
    result = run_check(IS_PRODUCTION="true", SECRET_KEY="dummy", ALLOWED_HOSTS="*", DEBUG="")
    assert result.returncode != 0
    assert "Refusing to start with IS_PRODUCTION on" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_production_with_safe_values_passes_the_system_check():
    result = run_check(
        IS_PRODUCTION="true",
        SECRET_KEY="k3J9x-q7Lm2vR8tY1zW4bN6cH0dF5gS!aE@uI#oP$lK%jM^nB&vC*xZ(",
        ALLOWED_HOSTS="example.com",
        DEBUG="false",
        ACCOUNT_EMAIL_VERIFICATION="",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("variable", ["EMAIL_TIMEOUT", "EMAIL_MAX_ATTEMPTS", "EMAIL_RETRY_SECONDS"])
def test_email_sending_limits_below_one_refuse_to_start_with_a_clear_message(variable):
    """0 would fail every send at once (timeout), never try one, or retry in a busy loop."""
    result = run_check(**{variable: "0"})
    assert result.returncode != 0
    assert "EMAIL_MAX_ATTEMPTS and EMAIL_RETRY_SECONDS must be at least 1" in result.stderr


def test_the_cache_is_the_database_table_unless_redis_is_configured():
    if settings.REDIS_URL:
        assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    else:
        assert settings.CACHES["default"]["LOCATION"] == "cache_table"


def test_state_paths_default_to_the_quickscale_folder():
    state = PROJECT_ROOT / ".quickscale"
    if "MAIL_LOG_PATH" not in os.environ:
        assert state / "logs" / "mail.log" == settings.MAIL_LOG_PATH
    if "STATIC_ROOT" not in os.environ:
        assert state / "staticfiles" == settings.STATIC_ROOT
    if "MEDIA_ROOT" not in os.environ:
        assert state / "media" == settings.MEDIA_ROOT


def _site_url(**env: str) -> str:
    environ = {**os.environ, "SITE_URL": "", **env}
    result = run_python(
        ["-c", "from core import settings; print(settings.SITE_URL)"], environ, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_site_url_for_email_links_is_absolute_by_default_and_overridable():
    assert _site_url(IS_PRODUCTION="false", WEB_PORT="8123") == "http://localhost:8123"
    production = {
        "IS_PRODUCTION": "true",
        "SECRET_KEY": "k3J9x-q7Lm2vR8tY1zW4bN6cH0dF5gS!aE@uI#oP$lK%jM^nB&vC*xZ(",
        "ALLOWED_HOSTS": ".example.com,www.example.com",
        "DEBUG": "false",
        "ACCOUNT_EMAIL_VERIFICATION": "",
    }
    assert _site_url(**production) == "https://example.com"
    assert _site_url(**production, SITE_URL="https://app.example.com/") == (
        "https://app.example.com"
    )
