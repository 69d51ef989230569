import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import database_url, env_bool, env_int, env_list, env_url, read_security_config


@pytest.mark.parametrize(
    "raw", ["yes", "true", "1", "on", "enabled", "y", "t", "TRUE", " Yes ", "On"]
)
def test_env_bool_accepts_every_spelling_of_on(raw):
    assert env_bool("FLAG", False, {"FLAG": raw}) is True


@pytest.mark.parametrize("raw", ["no", "false", "0", "off", "disabled", "n", "f", "FALSE"])
def test_env_bool_accepts_every_spelling_of_off(raw):
    assert env_bool("FLAG", True, {"FLAG": raw}) is False


@pytest.mark.parametrize("environ", [{}, {"FLAG": ""}, {"FLAG": "  "}])
def test_env_bool_falls_back_to_the_default_when_unset_or_empty(environ):
    assert env_bool("FLAG", True, environ) is True


def test_env_bool_refuses_a_typo_instead_of_guessing():
    with pytest.raises(ImproperlyConfigured, match="FLAG='ture'"):
        env_bool("FLAG", False, {"FLAG": "ture"})


def test_env_int_parses_numbers_and_refuses_words():
    assert env_int("PORT", 1, {"PORT": "8080"}) == 8080
    assert env_int("PORT", 1, {}) == 1
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env_int("PORT", 1, {"PORT": "eighty"})


def test_env_list_splits_on_commas_and_drops_blanks():
    assert env_list("HOSTS", None, {"HOSTS": " a.com, b.com ,,"}) == ["a.com", "b.com"]
    assert env_list("HOSTS", ["*"], {}) == ["*"]


def test_database_url_wins_over_db_variables():
    environ = {"DATABASE_URL": "postgres://u@h:1/n", "DB_HOST": "ignored"}
    assert database_url(environ) == "postgres://u@h:1/n"


def test_database_url_is_built_from_db_variables_when_unset():
    environ = {
        "DB_USER": "app",
        "DB_PASSWORD": "p@ss/word",
        "DB_HOST": "dbhost",
        "DB_PORT": "5433",
        "DB_NAME": "appdb",
    }
    assert database_url(environ) == "postgres://app:p%40ss%2Fword@dbhost:5433/appdb"


def test_database_url_uses_the_spec_defaults_for_missing_db_variables():
    assert database_url({}) == "postgres://admin:adminpasswd@db:5432/quickscale"


def test_development_defaults_are_convenient():
    config = read_security_config({})
    assert config.is_production is False
    assert config.debug is True
    assert config.allowed_hosts == ["*"]
    assert config.account_email_verification == "optional"


def test_production_defaults_are_safe():
    config = read_security_config({"IS_PRODUCTION": "yes"})
    assert config.debug is False
    assert config.secret_key == ""
    assert config.allowed_hosts == []
    assert config.account_email_verification == "mandatory"


def test_an_unknown_email_verification_mode_is_refused():
    with pytest.raises(ImproperlyConfigured, match="ACCOUNT_EMAIL_VERIFICATION"):
        read_security_config({"ACCOUNT_EMAIL_VERIFICATION": "sometimes"})


@pytest.mark.parametrize(
    "raw", ["https://api.openai.com/v1", "http://localhost:11434/v1", "http://127.0.0.1:8080"]
)
def test_env_url_accepts_http_and_https_urls(raw):
    assert env_url("OPENAI_BASE_URL", {"OPENAI_BASE_URL": raw}) == raw


def test_env_url_is_empty_when_unset():
    assert env_url("OPENAI_BASE_URL", {}) == ""


@pytest.mark.parametrize(
    "raw", ["localhost:11434/v1", "ftp://example.com", "http://", "http://a b"]
)
def test_env_url_refuses_what_is_not_an_http_url_and_names_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match="OPENAI_BASE_URL"):
        env_url("OPENAI_BASE_URL", {"OPENAI_BASE_URL": raw})
