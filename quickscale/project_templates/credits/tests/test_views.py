import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from credits import ledger

pytestmark = pytest.mark.django_db


class _TextById(HTMLParser):
    """Collect the text inside each element that has an id (nested ones included)."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str | None]] = []
        self.texts: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element_id = dict(attrs).get("id")
        self.open.append((tag, element_id))
        if element_id:
            self.texts[element_id] = ""

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for _, element_id in self.open:
            if element_id:
                self.texts[element_id] += data


def texts(html: str) -> dict[str, str]:
    """Return each element id's text, whitespace collapsed."""
    parser = _TextById()
    parser.feed(html)
    return {key: re.sub(r"\s+", " ", text).strip() for key, text in parser.texts.items()}


@pytest.fixture
def member_client(client, user):
    client.force_login(user)
    return client


def test_the_credits_page_needs_a_signed_in_user(client):
    response = client.get(reverse("credits:dashboard"))

    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_the_credits_page_shows_the_balance_split_and_the_next_expiry(member_client, user):
    expiry = timezone.now() + timedelta(days=2)
    ledger.grant(user, 30, source="subscription", reference="in_1", expires_at=expiry)
    ledger.grant(user, Decimal("12.50"), source="purchase", reference="cs_1", description="Pack")
    ledger.consume(user, 5, reference="use-1", description="Sentiment analysis")

    response = member_client.get(reverse("credits:dashboard"))

    assert response.status_code == 200
    assert response.context["balance"] == ledger.Balance(
        Decimal(25), Decimal("12.50"), Decimal("37.50"), Decimal(0), Decimal("37.50")
    )
    assert response.context["next_expiry"].amount == Decimal(25)
    html = response.content.decode()
    assert "Sentiment analysis" in html
    assert "Pack" in html
    assert expiry.strftime("%Y-%m-%d") in html


def test_the_credits_page_paginates_the_history(member_client, user):
    for i in range(30):
        ledger.grant(user, 1, source="purchase", reference=f"cs_{i}")

    first = member_client.get(reverse("credits:dashboard"))
    second = member_client.get(reverse("credits:dashboard"), {"page": 2})

    assert len(first.context["page"].object_list) == 25
    assert [e.key for e in second.context["page"].object_list] == [
        f"cs_{i}" for i in range(4, -1, -1)
    ]


def test_the_navbar_links_to_the_credits_page_with_the_balance(member_client, user):
    ledger.grant(user, Decimal("7.25"), source="purchase", reference="cs_1")

    html = member_client.get(reverse("public:index")).content.decode()

    assert reverse("credits:dashboard") in html
    assert "7.25" in html


def test_switching_the_credit_system_off_hides_the_credit_ui(member_client, settings):
    settings.CREDIT_SYSTEM_ENABLED = False

    assert member_client.get(reverse("credits:dashboard")).status_code == 404
    assert member_client.get(reverse("credits:history_csv")).status_code == 404
    html = member_client.get(reverse("public:index")).content.decode()
    assert reverse("credits:dashboard") not in html


def test_the_history_export_streams_every_entry_as_csv_oldest_first(member_client, user):
    ledger.grant(user, 10, source="purchase", reference="cs_1", description="Pack")
    ledger.consume(user, Decimal("2.5"), reference="use-1", description="=HYPERLINK()")

    response = member_client.get(reverse("credits:history_csv"))

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
    assert rows[0] == ["date", "type", "description", "amount", "shortfall", "reference"]
    assert [row[1:] for row in rows[1:]] == [
        ["Grant", "Pack", "10.00", "0.00", "cs_1"],
        ["Usage", "'=HYPERLINK()", "-2.50", "0.00", "use-1"],
    ]


def test_the_history_export_needs_a_signed_in_user(client):
    assert client.get(reverse("credits:history_csv")).status_code == 302


def test_one_users_page_never_shows_another_users_history(member_client, other_user):
    ledger.grant(other_user, 10, source="purchase", reference="cs_other", description="Secret")

    response = member_client.get(reverse("credits:dashboard"))

    assert "Secret" not in response.content.decode()
    assert response.context["balance"].total == Decimal(0)


def test_the_credits_page_and_navbar_show_what_holds_reserve(member_client, user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 4, key="call-1", expires_at=timezone.now() + timedelta(hours=1))

    response = member_client.get(reverse("credits:dashboard"))
    shown = texts(response.content.decode())

    assert shown["credit-available"] == "6"
    assert shown["credit-reserved"] == (
        "Of 10 in total, 4 are held by calls still running. "
        "Each is charged what it costs; the rest comes back."
    )
    assert shown["navbar-credits"] == "Credits 6 4 reserved"
    # A hold is not history until it is settled: the page lists the grant alone.
    assert [entry.key for entry in response.context["page"].object_list] == ["cs_1"]


def test_without_holds_the_page_and_navbar_show_the_balance_alone(member_client, user):
    ledger.grant(user, 10, source="purchase", reference="cs_1")
    ledger.hold(user, 4, key="call-1", expires_at=timezone.now() + timedelta(hours=1))
    ledger.settle("call-1", amount=3)

    html = member_client.get(reverse("credits:dashboard")).content.decode()
    shown = texts(html)

    assert shown["credit-available"] == "7"
    assert "credit-reserved" not in shown
    assert "navbar-credits-reserved" not in shown
    assert shown["navbar-credits"] == "Credits 7"


def test_the_page_writes_credits_once_with_separators_and_no_needless_decimals(member_client, user):
    ledger.grant(user, Decimal("2000.00"), source="purchase", reference="cs_big")
    ledger.grant(user, Decimal("0.50"), source="admin", reference="gift")
    html = member_client.get(reverse("credits:dashboard")).content.decode()
    shown = texts(html)
    assert shown["credit-available"] == "2,000.5"
    assert shown["credit-pay-as-you-go"] == "2,000.5"
    assert shown["navbar-credits"] == "Credits 2,000.5"
    assert "+2,000<" in html
    assert "+0.5<" in html
    assert "2000.00" not in html


def test_a_transfer_in_the_history_shows_the_credits_it_moved(member_client, user):
    ledger.grant(
        user,
        496,
        source="subscription",
        reference="in_plan",
        expires_at=timezone.now() + timedelta(days=30),
    )
    ledger.convert_subscription_credits(user, reference="plan-change")
    html = member_client.get(reverse("credits:dashboard")).content.decode()
    row = html[html.index("Subscription credits converted to pay-as-you-go") :]
    row = row[: row.index("</tr>")]
    assert "496 moved" in row
    assert "0.00" not in row
