"""Tests of service_template_name (generated with it; extend them as the service grows)."""

import io
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image

from credits import ledger
from services.configuration import ensure_service_rows
from services.exceptions import ServiceInputError
from services.models import ServiceUsage
from services.registry import create_service_instance, registered_services
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db
NAME = "service_template_name"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), "green").save(buffer, "PNG")
    return buffer.getvalue()


GOOD_INPUT: dict[str, Any] = {"text": "Hello world. Nice to meet you."}  # quickscale:good-input
BAD_INPUT: dict[str, Any] = {"text": ""}  # quickscale:bad-input


def test_service_template_name_is_registered_and_gets_a_row_at_bootstrap() -> None:
    assert NAME in registered_services()
    assert NAME in ensure_service_rows((NAME,))


def test_service_template_name_runs_and_charges_its_cost() -> None:
    ensure_service_rows((NAME,))
    user = make_user()
    ledger.grant(user, Decimal(100), source="admin", reference=f"test-{NAME}")
    service = create_service_instance(NAME)
    outcome = service.run(user, **GOOD_INPUT)
    assert outcome.usage.status == ServiceUsage.Status.SUCCEEDED
    assert outcome.result
    cost = type(service).default_credit_cost
    assert ledger.balance(user).total == Decimal(100) - cost


def test_service_template_name_refuses_bad_input_before_charging() -> None:
    with pytest.raises(ServiceInputError):
        create_service_instance(NAME).validate_input(**BAD_INPUT)
