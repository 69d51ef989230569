"""Under production settings nobody learns from our answers whether an email has an account.

Development keeps verification optional for the demo, where allauth must say that
an address is taken; production makes verification mandatory, and then sign-up,
sign-in and password reset answer a known and an unknown address alike, while
the known address's owner is told by email instead.
"""

import difflib
import json
from typing import Any

import pytest

from common.testing.database import session_database_url
from common.testing.process import run_python
from common.testing.production import production_env

KNOWN = "owner@example.com"

# The probe runs in another process and commits; transactional tests flush what it wrote.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def seen(django_db_setup, django_db_blocker) -> dict[str, Any]:
    """Run the probe once in a fresh production process against the test database."""
    with django_db_blocker.unblock():
        env = production_env(DATABASE_URL=session_database_url())
        env["DJANGO_SETTINGS_MODULE"] = "core.settings"
        env["ACCOUNT_SIGNUP_OPEN"] = "True"  # the probe signs up, whatever .env sets
        result = run_python(["-m", "users.tests.enumeration_probe"], env)
        assert result.returncode == 0, result.stderr[-3000:]
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def test_production_makes_verification_mandatory(seen):
    assert seen["verification"] == "mandatory"


@pytest.mark.parametrize("flow", ["signup", "login", "reset"])
def test_a_known_and_an_unknown_email_get_the_same_answer(seen, flow):
    known, unknown = seen["known"][flow], seen["unknown"][flow]
    assert (known["status"], known["location"]) == (unknown["status"], unknown["location"])
    difference = difflib.unified_diff(
        known["page"].splitlines(), unknown["page"].splitlines(), "known", "unknown", lineterm=""
    )
    assert known["page"] == unknown["page"], "\n".join(difference)


def test_signing_up_with_a_taken_email_emails_its_owner_and_creates_nothing(seen):
    assert seen["accounts_with_known_email"] == 1
    to_owner = [message["subject"] for message in seen["mail"] if message["to"] == [KNOWN]]
    # One for the sign-up attempt, one password reset link.
    assert len(to_owner) == 2
    assert any("reset" in subject.lower() for subject in to_owner)
