"""Addresses no resource can have: a NUL byte anywhere, an id beyond any column.

Each is a 404 before a view can use it in a query (PostgreSQL refuses NUL in
text, so the query itself would fail), in development and in production.
"""

import pytest
from django.test import Client

from services.configuration import ensure_service_rows
from services.models import Service
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

NUL_PAGES = [
    "/billing/receipts/%00/",
    "/stripe/simulator/checkout/%00/",
    "/stripe/simulator/portal/%00/",
    "/dashboard/services/%00/",
    "/services/%00/",
    "/accounts/confirm-email/%00/",
    "/admin/services/service/%00/change/",
    "/dashboard/services/demo_free_service%00/",
    "/%00",
]


@pytest.fixture
def staff_client() -> Client:
    """A signed-in superuser, so every page gets as far as its lookup."""
    client = Client(raise_request_exception=True)
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("debug", [False, True], ids=["production", "development"])
@pytest.mark.parametrize("path", NUL_PAGES)
def test_a_nul_byte_in_a_page_address_is_a_404(staff_client, settings, debug, path):
    settings.DEBUG = debug
    assert staff_client.get(path).status_code == 404


def test_the_404_is_the_sites_own_page(staff_client):
    response = staff_client.get("/billing/receipts/%00/")
    assert response.status_code == 404
    assert b"<html" in response.content.lower()


def test_a_post_with_a_nul_byte_in_the_address_is_a_404_and_changes_nothing(staff_client):
    ensure_service_rows()
    before = list(Service.objects.order_by("name").values_list("name", "is_active"))
    response = staff_client.post("/dashboard/services/demo_free_service%00/toggle/")
    assert response.status_code == 404
    response = staff_client.post("/dashboard/services/%00/toggle/")
    assert response.status_code == 404
    assert list(Service.objects.order_by("name").values_list("name", "is_active")) == before


def test_a_nul_byte_under_the_api_is_the_apis_own_404_envelope(client):
    response = client.get("/api/%00/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/dashboard/users/99999999999999999999/"),
        ("get", "/dashboard/payments/99999999999999999999/"),
        ("post", "/dashboard/users/99999999999999999999/adjust/"),
        ("post", "/dashboard/payments/99999999999999999999/refund/"),
        ("post", "/api-keys/99999999999999999999/revoke/"),
    ],
)
def test_an_id_beyond_any_integer_column_is_a_404(staff_client, method, path):
    assert getattr(staff_client, method)(path).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/users/?q=%00",
        "/dashboard/payments/?q=%00",
        "/dashboard/audit/?q=%00",
        "/services/usage/?page=%00",
        "/services/jobs/?page=%00",
        "/admin/users/customuser/?q=%00",
    ],
)
def test_a_nul_byte_in_a_query_value_is_refused_by_its_form_not_by_the_database(staff_client, path):
    # Django's form fields refuse NUL (ProhibitNullCharactersValidator) before any query.
    assert staff_client.get(path).status_code == 200
