from pathlib import Path

from dotenv import dotenv_values

from core.checks import production_problems
from core.env import database_url, read_security_config

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def example_values() -> dict[str, str]:
    return {key: value or "" for key, value in dotenv_values(ENV_EXAMPLE).items()}


def test_env_example_gives_a_working_development_configuration():
    values = example_values()
    config = read_security_config(values)
    assert not config.is_production
    assert config.account_email_verification == "optional"
    assert production_problems(values) == []
    assert database_url(values).startswith("postgres://")


def test_env_example_holds_the_keys_the_generator_rewrites():
    values = example_values()
    assert values["SECRET_KEY"] == "!!!SET SECRET_KEY!!!"
    assert values["QUICKSCALE_RUNTIME"] == "local"
    assert values["WEB_PORT"] == "8000"
    assert {"DB_PASSWORD", "PROJECT_NAME", "STRIPE_WEBHOOK_SECRET"} <= values.keys()


def test_switching_the_example_to_production_alone_is_refused():
    values = {**example_values(), "IS_PRODUCTION": "True"}
    problems = " ".join(production_problems(values))
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"):
        assert name in problems
