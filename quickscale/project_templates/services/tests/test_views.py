from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from common.testing.html import elements, texts
from credits import ledger
from services.models import Service, ServiceUsage
from services.tests.factories import png_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_services")]
HTMX = {"HTTP_HX_REQUEST": "true"}


def detail(name: str) -> str:
    return reverse("services:detail", args=[name])


def test_service_pages_need_a_signed_in_user(client):
    for url in (reverse("services:list"), detail("demo_free_service"), reverse("services:usage")):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]


def test_the_list_shows_active_services_with_their_cost_and_hides_inactive_ones(client, member):
    Service.objects.filter(name="text_summarizer").update(is_active=False)
    html = client.get(reverse("services:list")).content.decode()
    assert detail("text_sentiment_analysis") in html
    assert detail("text_summarizer") not in html
    assert ">10 credits per call<" in html  # the image service's cost
    assert ">0.2 credits per item<" in html  # the batch service's, charged per text
    assert "10.00" not in html


def test_a_plain_form_post_runs_the_service_and_renders_the_whole_page(client, member):
    response = client.post(detail("text_sentiment_analysis"), {"text": "What a great day"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<nav" in html
    assert "positive" in html
    assert ledger.balance(member).total == Decimal("4.00")
    assert ServiceUsage.objects.get().origin == "web"


def test_an_htmx_post_returns_the_panel_and_the_new_balance_out_of_band(client, member):
    response = client.post(detail("text_sentiment_analysis"), {"text": "Awful."}, **HTMX)
    html = response.content.decode()
    found = elements(html)
    assert "<nav" not in html
    assert "service-panel" in found
    assert found["navbar-credits"]["hx-swap-oob"] == "true"
    assert 'title="Available to spend">4</span>' in html
    assert "negative" in html


def test_an_image_upload_through_the_form_shows_its_metadata(client, member, fund):
    fund(member, 10)
    upload = SimpleUploadedFile("dot.png", png_bytes(3, 2), content_type="image/png")
    html = client.post(detail("image_metadata_extractor"), {"image": upload}).content.decode()
    assert "PNG" in html
    assert ledger.balance(member).total == Decimal("5.00")


def test_bad_input_is_shown_on_its_field_and_costs_nothing(client, member):
    response = client.post(detail("text_sentiment_analysis"), {"text": "bad\x01bytes"})
    assert response.status_code == 422
    assert "binary data" in response.content.decode()
    assert ledger.balance(member).total == Decimal("5.00")


def test_not_enough_credits_is_explained_and_costs_nothing(client, member):
    upload = SimpleUploadedFile("dot.png", png_bytes(), content_type="image/png")
    response = client.post(detail("image_metadata_extractor"), {"image": upload}, **HTMX)
    assert response.status_code == 200
    assert "Insufficient credits" in response.content.decode()
    assert ledger.balance(member).total == Decimal("5.00")
    assert not ServiceUsage.objects.exists()


@pytest.mark.parametrize("name", ["no_such_service", "..", "text_summarizer"])
def test_unknown_or_inactive_services_have_no_page(client, member, name):
    Service.objects.filter(name="text_summarizer").update(is_active=False)
    assert client.get(detail(name)).status_code == 404


def test_the_usage_history_lists_the_users_calls_newest_first(client, member, other_user):
    client.post(detail("demo_free_service"), {"text": "one two"})
    client.post(detail("text_sentiment_analysis"), {"text": "fine"})
    html = client.get(reverse("services:usage")).content.decode()
    assert html.index("Sentiment analysis") < html.index("Word counter")
    client.force_login(other_user)
    assert "Word counter" not in client.get(reverse("services:usage")).content.decode()


def test_a_run_from_the_page_reads_the_service_row_once(client, member):
    with CaptureQueriesContext(connection) as queries:
        response = client.post(detail("demo_free_service"), {"text": "one two"}, **HTMX)
    assert response.status_code == 200
    assert ServiceUsage.objects.get().status == ServiceUsage.Status.SUCCEEDED
    sql = [query["sql"] for query in queries.captured_queries]
    assert sum('FROM "services_service"' in statement for statement in sql) == 1


def test_a_failed_call_is_explained_under_the_service_title(client, user, blocking_service):
    client.force_login(user)

    response = client.post(detail("test_blocking_service"), {"text": "fail"})

    error = texts(response.content.decode())["service-error"]
    assert error == "Test blocking service failed and no credits were charged. Try again later."
