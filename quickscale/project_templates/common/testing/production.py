"""The environment of a production deployment, for tests that start a fresh process."""

import os
import secrets


def production_env(**extra: str) -> dict[str, str]:
    """This process's environment with safe production values, then ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG"))}
    env.update(
        IS_PRODUCTION="True",
        # Set rather than left out: a built project's .env says DEBUG=True.
        DEBUG="False",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="example.com",
        ACCOUNT_EMAIL_VERIFICATION="mandatory",
        DATABASE_URL=env.get("DATABASE_URL", "postgres://nobody@localhost:1/none"),
    )
    env.update(extra)
    return env
