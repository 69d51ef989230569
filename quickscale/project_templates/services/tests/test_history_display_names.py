"""Credit histories name a call's service by its title, not its registered name.

The ledger entries are written by real calls (a direct call, a background job
and the refund of a call); their stored descriptions keep the identifier and
the pages show the title at display time.
"""

import csv
import io
import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from credits import ledger
from credits.models import LedgerEntry
from services.jobs import run_job
from services.models import Job
from services.registry import create_service_instance

pytestmark = pytest.mark.django_db


class _Cells(HTMLParser):
    """The text of each ``<td data-label="...">`` cell, by label, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, list[str]] = {}
        self._label: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td":
            self._label = dict(attrs).get("data-label")
            if self._label:
                self.cells.setdefault(self._label, []).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._label = None

    def handle_data(self, data: str) -> None:
        if self._label:
            self.cells[self._label][-1] += data


def cells(html: str, label: str) -> list[str]:
    parser = _Cells()
    parser.feed(html)
    return [re.sub(r"\s+", " ", text).strip() for text in parser.cells.get(label, [])]


@pytest.fixture
def history(user, fund, default_services, enqueue):
    """A call of the sentiment service, its refund, and a finished batch job."""
    fund(user, 50)
    call = create_service_instance("text_sentiment_analysis").run(user, text="I love it")
    assert call.usage.ledger_entry is not None
    ledger.reverse(call.usage.ledger_entry.key, reason="it misread me")
    job = enqueue(create_service_instance("batch_sentiment_analysis"), user, texts="Great.\nAwful.")
    run_job(job.pk)
    assert Job.objects.get(pk=job.pk).state == Job.State.SUCCEEDED
    return user


def test_stored_descriptions_keep_the_service_names(history):
    stored = set(LedgerEntry.objects.filter(user=history).values_list("description", flat=True))

    assert {
        "text_sentiment_analysis",
        "Refund: text_sentiment_analysis",
        "batch_sentiment_analysis",
    } <= stored


def test_the_credits_page_shows_service_titles_in_the_history(client, history):
    client.force_login(history)

    described = cells(client.get(reverse("credits:dashboard")).content.decode(), "Description")

    assert "Sentiment analysis" in described
    assert "Refund: Sentiment analysis" in described
    assert "Batch sentiment analysis" in described
    assert not [text for text in described if "_sentiment_analysis" in text]


def test_the_history_export_shows_service_titles(client, history):
    client.force_login(history)

    response = client.get(reverse("credits:history_csv"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    descriptions = {row["description"] for row in rows}
    assert {"Sentiment analysis", "Refund: Sentiment analysis", "Batch sentiment analysis"} <= (
        descriptions
    )
    assert not [text for text in descriptions if "_sentiment_analysis" in text]


def test_the_admin_user_page_shows_service_titles(client, staff, history):
    client.force_login(staff)

    html = client.get(reverse("admin_dashboard:user_detail", args=[history.pk])).content.decode()

    services_used = cells(html, "Service")
    assert "Sentiment analysis" in services_used
    assert "Batch sentiment analysis" in services_used
    described = cells(html, "Description / reason")
    assert "Refund: Sentiment analysis — it misread me" in described
    assert not [text for text in services_used + described if "_sentiment_analysis" in text]
