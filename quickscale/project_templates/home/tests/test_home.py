"""The signed-in home: what it shows, where sign-in lands, and a bounded number of queries."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from api.services import api_key_create
from credits import ledger
from credits.models import LedgerEntry
from services.configuration import ensure_service_rows
from services.models import Service, ServiceUsage
from services.registry import create_service_instance
from stripe_manager.models import UserSubscription
from stripe_manager.tests.factories import make_catalog
from users.models import CustomUser
from users.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

HOME = "/home/"


def _call(
    user: CustomUser,
    service: Service,
    amount: Decimal | str,
    *,
    reference: str,
    days_ago: int = 0,
) -> ServiceUsage:
    """A charged call of ``service``, ``days_ago`` days back."""
    entry = ledger.consume(user, Decimal(amount), reference=reference)
    usage = ServiceUsage.objects.create(
        user=user,
        service=service,
        credits_charged=Decimal(amount),
        ledger_entry=entry,
        status=ServiceUsage.Status.SUCCEEDED,
        input_summary="hello",
    )
    if days_ago:
        moment = timezone.now() - timedelta(days=days_ago)
        LedgerEntry.objects.filter(pk=entry.pk).update(created_at=moment)
        ServiceUsage.objects.filter(pk=usage.pk).update(created_at=moment)
    return usage


@pytest.fixture
def service(db):
    return Service.objects.create(
        name="text_word_counter", description="Counts words.", credit_cost=Decimal("1.50")
    )


def test_the_home_asks_anonymous_visitors_to_sign_in(client):
    response = client.get(HOME)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_the_home_shows_the_balance_breakdown_formatted(client, user, fund):
    fund(user, "2500")
    ledger.hold(user, 10, key="home-hold", expires_at=timezone.now() + timedelta(minutes=5))
    client.force_login(user)
    html = client.get(HOME).content.decode()
    assert 'id="balance-available">2,490<' in html
    assert 'id="balance-payg">2,500<' in html
    assert 'id="balance-subscription">0<' in html
    assert 'id="balance-reserved">10<' in html
    assert "2500.00" not in html


def test_the_home_shows_the_plan_and_its_renewal(client, user):
    catalog = make_catalog()
    renews = timezone.now() + timedelta(days=12)
    UserSubscription.objects.create(
        user=user,
        stripe_subscription_id="sub_home",
        price_id="price_pro",
        product=catalog["pro"],
        status="active",
        current_period_end=renews,
    )
    client.force_login(user)
    html = client.get(HOME).content.decode()
    assert 'id="plan-name">Pro<' in html
    renewal = html[html.index('id="plan-renewal"') :]
    renewal = renewal[: renewal.index("</p>")]
    assert "Renews on" in renewal
    assert f"{renews:%b} {renews.day}, {renews.year}</time> for $45.00." in renewal
    assert 'id="step-buy"' not in html  # subscribed: nothing to buy


def test_the_chart_has_a_bar_per_day_and_says_its_numbers(client, user, fund, service):
    fund(user, "5000")
    _call(user, service, "1200", reference="today")
    _call(user, service, "0.5", reference="three-days-ago", days_ago=3)
    _call(user, service, "99", reference="too-old", days_ago=40)
    client.force_login(user)
    html = client.get(HOME).content.decode()
    chart = html[html.index('<figure class="usage-chart"') : html.index("</figure>")]
    assert 'role="img"' in chart
    assert chart.count("<rect ") == 30
    assert "1,200.5 credits spent from" in chart  # the 40-day-old call is not counted
    assert "the most in one day was 1,200 on" in chart
    table = html[html.index('id="usage-table"') :]
    assert '<td class="has-text-right">1,200</td>' in table
    assert '<td class="has-text-right">0.5</td>' in table


def test_recent_calls_and_service_cards_are_listed(client, user, fund, service):
    fund(user, "10")
    _call(user, service, "1.50", reference="one")
    client.force_login(user)
    html = client.get(HOME).content.decode()
    calls = html[html.index('id="recent-calls"') :]
    # A service whose class is gone is still titled from its name.
    assert ">Text word counter</a>" in calls
    assert '<td class="has-text-right">1.5</td>' in calls
    cards = html[html.index('id="service-cards"') :]
    assert "Counts words." in cards
    assert "1.5 credits per call" in cards


def test_next_steps_show_what_is_left_and_disappear_once_done(client, fund, service):
    newcomer = make_user("new@example.com", verified=False)
    client.force_login(newcomer)
    html = client.get(HOME).content.decode()
    for step in ("confirm-email", "buy", "api-key", "try-service"):
        assert f'id="step-{step}"' in html

    EmailAddress.objects.filter(user=newcomer).update(verified=True)
    api_key_create(newcomer, name="laptop")
    fund(newcomer, "5")
    _call(newcomer, service, "1", reference="first")
    html = client.get(HOME).content.decode()
    for step in ("confirm-email", "api-key", "try-service"):
        assert f'id="step-{step}"' not in html
    assert 'id="step-buy"' in html  # granted credits are not a purchase

    make_catalog()
    UserSubscription.objects.create(
        user=newcomer, stripe_subscription_id="sub_x", price_id="price_basic", status="canceled"
    )
    html = client.get(HOME).content.decode()
    assert 'id="next-steps"' not in html


def test_the_home_reads_in_a_bounded_number_of_queries(client, user, fund, service):
    client.force_login(user)
    fund(user, "1000")
    _call(user, service, "1", reference="warm")
    client.get(HOME)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        assert client.get(HOME).status_code == 200
    for number in range(20):
        other = Service.objects.create(name=f"svc_{number}", credit_cost=1)
        _call(user, other, "1", reference=f"call-{number}", days_ago=number)
    with CaptureQueriesContext(connection) as many:
        assert client.get(HOME).status_code == 200
    assert len(many) == len(few)
    assert len(many) <= 14


def test_signing_in_lands_users_on_the_home_and_staff_on_the_dashboard(client, user, staff):
    login = reverse("account_login")
    response = client.post(login, {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == HOME
    client.logout()
    response = client.post(login, {"login": staff.email, "password": PASSWORD})
    assert response["Location"] == reverse("admin_dashboard:dashboard")


def test_staff_land_on_the_home_when_the_setting_is_empty(client, staff, settings):
    settings.STAFF_LOGIN_REDIRECT = ""
    response = client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert response["Location"] == HOME


def test_a_next_address_still_wins_over_the_home(client, user):
    response = client.post(
        reverse("account_login") + "?next=/credits/",
        {"login": user.email, "password": PASSWORD, "next": "/credits/"},
    )
    assert response["Location"] == "/credits/"


def test_navbar_home_goes_to_the_app_home_when_signed_in(client, user):
    anonymous = client.get("/about/").content.decode()
    assert '<a class="navbar-item" href="/">Home</a>' in anonymous
    client.force_login(user)
    signed_in = client.get("/about/").content.decode()
    assert f'<a class="navbar-item" href="{HOME}">Home</a>' in signed_in


def _link_texts(html: str, section_id: str, cell_class: str, end: str) -> list[str]:
    """The link texts (icons left out) of ``cell_class`` elements from ``section_id`` to ``end``."""
    section = html[html.index(f'id="{section_id}"') :]
    section = section[: section.index(end)]
    found = re.findall(rf'class="[^"]*{cell_class}[^"]*">\s*<a [^>]*>(.*?)</a>', section, re.S)
    return [re.sub(r"<svg.*?</svg>", "", text, flags=re.S).strip() for text in found]


def test_recent_calls_and_cards_name_services_by_title(client, user, fund):
    ensure_service_rows(("text_sentiment_analysis",))
    fund(user, "10")
    create_service_instance("text_sentiment_analysis").run(user, text="I love it")
    client.force_login(user)

    html = client.get(HOME).content.decode()

    assert _link_texts(html, "recent-calls", "service", "</table>") == ["Sentiment analysis"]
    cards = _link_texts(html, "service-cards", "title", "</section>")
    assert cards == ["Sentiment analysis"]
    assert ">text_sentiment_analysis<" not in html
