from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from services.models import Service

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_default_services_creates_the_five_with_their_costs_once():
    first = run("create_default_services")
    second = run("create_default_services")
    costs = dict(Service.objects.values_list("name", "credit_cost"))
    assert costs == {
        "text_sentiment_analysis": Decimal("1.00"),
        "image_metadata_extractor": Decimal("10.00"),
        "demo_free_service": Decimal("0.00"),
        "text_summarizer": Decimal("2.00"),
        "batch_sentiment_analysis": Decimal("0.20"),
    }
    assert "created" in first
    assert second.strip() == "already exist"


def test_create_default_services_keeps_an_operators_changes():
    run("create_default_services")
    Service.objects.filter(name="text_summarizer").update(credit_cost=5, is_active=False)
    run("create_default_services")
    service = Service.objects.get(name="text_summarizer")
    assert (service.credit_cost, service.is_active) == (Decimal("5.00"), False)


def test_configure_service_creates_a_service_and_refuses_an_existing_one():
    out = run("configure_service", "my_service", "--credit-cost", "1.5", "--active")
    assert "Created my_service: 1.50 credits, active" in out
    assert "No service class" in out
    with pytest.raises(CommandError, match="already exists"):
        run("configure_service", "my_service", "--credit-cost", "2")


def test_configure_service_update_changes_only_what_is_given():
    run("configure_service", "my_service", "--credit-cost", "1.5", "--description", "Old")
    run("configure_service", "my_service", "--update", "--credit-cost", "2.0", "--inactive")
    service = Service.objects.get(name="my_service")
    assert (service.credit_cost, service.description, service.is_active) == (
        Decimal("2.00"),
        "Old",
        False,
    )


def test_configure_service_update_refuses_a_missing_service():
    with pytest.raises(CommandError, match="does not exist"):
        run("configure_service", "ghost", "--update", "--credit-cost", "1")


@pytest.mark.parametrize("cost", ["-1", "abc", "1.005", "NaN"])
def test_configure_service_refuses_a_bad_cost_and_writes_nothing(cost):
    with pytest.raises(CommandError):
        run("configure_service", "my_service", "--credit-cost", cost)
    assert not Service.objects.exists()


def test_configure_service_list_reports_a_row_without_a_class():
    run("create_default_services")
    run("configure_service", "orphan_service", "--credit-cost", "1")
    listing = run("configure_service", "--list")
    lines = {line.split()[0]: line for line in listing.splitlines()}
    assert "NO CLASS" in lines["orphan_service"]
    assert "class ok" in lines["text_sentiment_analysis"]


def test_configure_service_without_a_name_or_list_says_what_to_do():
    with pytest.raises(CommandError, match="--list"):
        run("configure_service")


def test_register_services_creates_rows_for_registered_classes_only_once():
    assert "created" in run("register_services")
    assert run("register_services").strip() == "none missing"
    assert Service.objects.filter(name="demo_free_service").exists()
