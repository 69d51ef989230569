"""The dashboard reads like the rest of the product: service titles, formatted audit details.

Services are named by their title where staff read them (the raw name stays as a
secondary monospace identifier); the audit log's details are a definition list
through ``common.formatting``; the action column's header is labelled for screen
readers.
"""

import re
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from django.urls import reverse

from admin_dashboard import services
from admin_dashboard.models import AuditLog
from services.configuration import ensure_service_rows
from stripe_manager.models import Payment

pytestmark = pytest.mark.django_db


class _Table(HTMLParser):
    """Cells of ``<table id=...>``: header texts, and per row each cell's label and text."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.inside = False
        self.headers: list[str] = []
        self.rows: list[list[dict[str, Any]]] = []
        self.cell: dict[str, Any] | None = None
        self.header: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("id") == self.table_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "tr":
            self.rows.append([])
        elif tag == "th":
            self.header = []
        elif tag == "td":
            self.cell = {"label": attributes.get("data-label"), "text": ""}
        elif self.header is not None and "is-sr-only" in (attributes.get("class") or ""):
            self.header.append("[sr-only]")

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag == "table":
            self.inside = False
        elif tag == "th" and self.header is not None:
            self.headers.append(" ".join(self.header).strip())
            self.header = None
        elif tag == "td" and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.header is not None:
            self.header.append(data.strip())
        if self.cell is not None:
            self.cell["text"] += data


def table(html: str, table_id: str) -> _Table:
    parser = _Table(table_id)
    parser.feed(html)
    return parser


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# --------------------------------------------------------------------------- services


@pytest.fixture
def registered_services(db):
    ensure_service_rows(("text_sentiment_analysis", "batch_sentiment_analysis"))


def test_the_services_page_names_services_by_title_with_the_name_as_a_code_detail(
    staff_client, registered_services
):
    html = staff_client.get(reverse("admin_dashboard:services")).content.decode()

    parsed = table(html, "service-table")
    service_cells = {squash(row[0]["text"]) for row in parsed.rows if row}
    assert "Sentiment analysis text_sentiment_analysis" in service_cells
    assert "Batch sentiment analysis batch_sentiment_analysis" in service_cells
    # The raw name is there only as the secondary monospace identifier.
    snippet = html[html.index('id="service-text_sentiment_analysis"') :]
    snippet = snippet[: snippet.index("</td>")]
    link_text = re.search(r"<a [^>]*>([^<]*)</a>", snippet)
    assert link_text is not None and link_text.group(1) == "Sentiment analysis"
    assert '<code class="is-size-7 service-name">text_sentiment_analysis</code>' in snippet
    assert 'hx-confirm="Switch Sentiment analysis off?' in html


def test_the_services_action_column_header_is_labelled_for_screen_readers(
    staff_client, registered_services
):
    html = staff_client.get(reverse("admin_dashboard:services")).content.decode()

    headers = table(html, "service-table").headers
    assert headers == ["Service", "Credits per call", "State", "[sr-only] Actions"]


def test_the_service_page_is_titled_by_the_service_title(staff_client, registered_services):
    url = reverse("admin_dashboard:service_detail", args=["batch_sentiment_analysis"])
    html = staff_client.get(url).content.decode()

    heading = re.search(r"<h1[^>]*>([^<]*)</h1>", html)
    assert heading is not None and heading.group(1) == "Batch sentiment analysis"
    assert "<title>Batch sentiment analysis" in html
    assert '<code class="service-name">batch_sentiment_analysis</code>' in html


# --------------------------------------------------------------------------- audit log


def audit_cells(staff_client: Any, **query: Any) -> list[dict[str, str]]:
    """Each audit row's cells by data-label; Details as 'label: value' lines."""
    html = staff_client.get(reverse("admin_dashboard:audit"), query).content.decode()
    rows = []
    for row in table(html, "audit-table").rows:
        if row and row[0]["label"]:
            rows.append({cell["label"]: squash(cell["text"]) for cell in row})
    details = re.findall(r'<td data-label="Details"[^>]*>(.*?)</td>', html, re.S)
    for shown, markup in zip(rows, details, strict=True):
        pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", markup, re.S)
        shown["Details"] = "; ".join(f"{label}: {value}" for label, value in pairs)
        shown["has_list"] = "yes" if "<dl" in markup else "no"
        # Phones leave an :empty cell out of the stacked card (static/css/phone.css).
        shown["cell_empty"] = "yes" if markup == "" else "no"
    return rows


def test_a_credit_adjustment_reads_as_formatted_credits(staff_client, staff, customer):
    services.credit_adjust(
        actor=staff, user=customer, amount=Decimal("1500"), reason="goodwill", reference="tok-1"
    )

    (row,) = audit_cells(staff_client, action="credit_adjustment")

    assert row["Details"].startswith("Requested: 1,500; Applied: 1,500; Ledger entry: ")
    # A zero shortfall says nothing and is left out.
    assert "Shortfall" not in row["Details"] and "1500.00" not in row["Details"]


def test_a_refund_reads_with_money_in_its_currency_and_the_payment_as_target(
    staff_client, customer, purchase, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin_dashboard:payment_refund", args=[purchase.pk]),
            {"reason": "Duplicate", "seen": str(services.refund_requests_seen(purchase))},
        )
    assert response.status_code == 302

    (row,) = audit_cells(staff_client, action="refund")

    assert (
        f"Payment: {purchase.receipt_number}; Requested: all that is left; Refunded: $10.00; "
        "Status: succeeded; Credits reversed: 100"
    ) in row["Details"]
    assert row["Target"] == f"{customer.email} · {purchase.receipt_number} · $10.00"
    assert "USD" not in row["Target"] + row["Details"]


def test_a_refund_in_another_currency_reads_in_that_currency(staff_client, staff, purchase):
    Payment.objects.filter(pk=purchase.pk).update(currency="eur")
    services.audit(
        staff,
        AuditLog.Action.REFUND_FAILED,
        target=purchase,
        target_user=purchase.user,
        reason="test",
        details={"payment": purchase.receipt_number, "requested": "2.50", "error": "no"},
    )

    (row,) = audit_cells(staff_client, action="refund_failed")

    assert row["Details"] == f"Payment: {purchase.receipt_number}; Requested: €2.50; Error: no"
    assert row["Target"].endswith(f"{purchase.receipt_number} · €10.00")


def test_an_investigation_without_warnings_shows_no_empty_list(staff_client, purchase):
    page = staff_client.get(reverse("admin_dashboard:payment_detail", args=[purchase.pk]))
    assert page.status_code == 200

    (row,) = audit_cells(staff_client, action="payment_investigation")

    assert AuditLog.objects.get(action="payment_investigation").details == {"warnings": []}
    assert row["Details"] == "" and row["has_list"] == "no"
    assert row["cell_empty"] == "yes"  # no "Details" label alone on a phone
    assert "[]" not in str(row)


def test_a_service_switch_reads_as_on_or_off_under_the_service_title(
    staff_client, staff, registered_services
):
    services.service_toggle(actor=staff, name="text_sentiment_analysis", active=False)
    services.service_cost_change(
        actor=staff, name="text_sentiment_analysis", credit_cost=Decimal("2.5")
    )

    cost, switch = audit_cells(staff_client)

    assert (switch["Target"], switch["Details"]) == ("Sentiment analysis", "Switched: off")
    assert cost["Details"] == "From: 1; To: 2.5"
