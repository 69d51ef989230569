from decimal import Decimal

import pytest

from credits import ledger
from credits.exceptions import InsufficientCredits
from credits.models import LedgerEntry
from credits.tests.factories import ledger_state
from services.base import BaseService
from services.exceptions import ServiceFailed, ServiceInputError, ServiceUnavailable
from services.models import Service, ServiceUsage
from services.registry import create_service_instance, register_service
from services.tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def exploding(isolated_registry):
    @register_service("test_exploding_service")
    class Exploding(BaseService):
        default_credit_cost = Decimal("3.00")

        def execute_service(self, user, **kwargs):
            raise RuntimeError("model crashed")

    Service.objects.create(name="test_exploding_service", credit_cost=Decimal("3.00"))
    return Exploding()


def test_a_paid_call_charges_its_cost_and_records_a_succeeded_usage(user, default_services, fund):
    fund(user, 5)
    outcome = create_service_instance("text_sentiment_analysis").run(user, text="I love it")

    assert outcome.result["label"] == "positive"
    assert ledger.balance(user).total == Decimal("4.00")
    usage = outcome.usage
    assert usage.status == ServiceUsage.Status.SUCCEEDED
    assert usage.credits_charged == Decimal("1.00")
    assert usage.ledger_entry is not None
    assert usage.ledger_entry.amount == Decimal("-1.00")
    assert usage.origin == "web"
    assert usage.input_summary == "text: I love it"


def test_each_call_is_charged_under_its_own_reference(user, default_services, fund):
    fund(user, 5)
    service = create_service_instance("text_sentiment_analysis")
    first = service.run(user, text="good").usage
    second = service.run(user, text="good").usage
    assert first.ledger_entry_id != second.ledger_entry_id
    assert ledger.balance(user).total == Decimal("3.00")


def test_a_free_service_never_touches_the_ledger(user, default_services):
    before = ledger_state()
    outcome = create_service_instance("demo_free_service").run(user, origin="api", text="a b")
    assert outcome.result["words"] == 2
    assert outcome.usage.ledger_entry is None
    assert outcome.usage.origin == "api"
    assert ledger_state() == before


def test_with_the_credit_system_off_a_paid_service_runs_without_charge(
    user, default_services, settings
):
    settings.CREDIT_SYSTEM_ENABLED = False
    outcome = create_service_instance("text_summarizer").run(user, text="One. Two.")
    assert outcome.usage.credits_charged == Decimal("0.00")
    assert outcome.usage.ledger_entry is None


def test_an_inactive_service_is_refused_without_charge_or_record(user, default_services, fund):
    fund(user, 5)
    Service.objects.filter(name="text_sentiment_analysis").update(is_active=False)
    before = ledger_state()
    with pytest.raises(ServiceUnavailable):
        create_service_instance("text_sentiment_analysis").run(user, text="hi")
    assert ledger_state() == before
    assert not ServiceUsage.objects.exists()


def test_a_class_without_a_service_row_is_refused(user, default_services):
    Service.objects.filter(name="demo_free_service").delete()
    with pytest.raises(ServiceUnavailable):
        create_service_instance("demo_free_service").run(user, text="hi")


def test_without_enough_credits_nothing_is_charged_or_recorded(user, default_services, fund):
    fund(user, 5)
    before = ledger_state()
    with pytest.raises(InsufficientCredits):
        create_service_instance("image_metadata_extractor").run(user, image=png_bytes())
    assert ledger_state() == before
    assert not ServiceUsage.objects.exists()


def test_bad_input_is_refused_before_any_charge(user, default_services, fund):
    fund(user, 5)
    before = ledger_state()
    with pytest.raises(ServiceInputError) as error:
        create_service_instance("text_sentiment_analysis").run(user, text="   ")
    assert "text" in error.value.details
    assert ledger_state() == before
    assert not ServiceUsage.objects.exists()


def test_a_service_that_raises_gives_the_credits_back_and_records_a_failed_usage(
    user, fund, exploding
):
    fund(user, 10)
    with pytest.raises(ServiceFailed) as error:
        exploding.run(user, anything="x")

    assert ledger.balance(user).total == Decimal("10.00")
    usage = error.value.usage
    assert usage.status == ServiceUsage.Status.FAILED
    assert usage.credits_charged == Decimal("0")
    assert "model crashed" in usage.error
    assert isinstance(error.value.__cause__, RuntimeError)
    assert ServiceUsage.objects.get() == usage


def test_a_failed_calls_refund_gives_the_service_title_as_its_reason(user, fund, exploding):
    fund(user, 10)
    with pytest.raises(ServiceFailed):
        exploding.run(user, anything="x")

    (refund,) = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REVERSAL)
    assert refund.reason == "Test exploding service failed"


def test_a_service_without_execute_service_fails_and_refunds(user, fund, isolated_registry):
    @register_service("test_unfinished_service")
    class Unfinished(BaseService):
        pass

    Service.objects.create(name="test_unfinished_service", credit_cost=Decimal("1.00"))
    fund(user, 1)
    with pytest.raises(ServiceFailed):
        Unfinished().run(user)
    assert ledger.balance(user).total == Decimal("1.00")
