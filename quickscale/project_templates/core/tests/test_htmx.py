"""Every page htmx swaps a part of: the fragment to htmx, the whole page otherwise.

The views render through ``common.htmx.render``; these tests go through the
URLs of every app that serves a fragment, so they live with the project wiring.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.backends.django import DjangoTemplates
from django.test import Client
from django.urls import reverse

from services.configuration import ensure_service_rows
from users.models import CustomUser

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
SERVICE = "demo_free_service"


@dataclass(frozen=True)
class World:
    staff: CustomUser
    customer: CustomUser


@dataclass(frozen=True)
class Endpoint:
    """One request to a page that serves a fragment, and what each kind of client gets."""

    method: str
    url: Callable[[World], str]
    fragment_starts: str  # the partial's root element
    page_status: int  # the answer without htmx; 302 for an action that redirects
    data: Callable[[], dict[str, Any]] = field(default=dict)
    fragment_shows: str = ""


ENDPOINTS = {
    "profile": Endpoint("get", lambda w: reverse("users:profile"), '<div id="profile-panel"', 200),
    "profile refused": Endpoint(
        "post",
        lambda w: reverse("users:profile"),
        '<div id="profile-panel"',
        200,
        data=lambda: {"avatar": SimpleUploadedFile("x.png", b"no image", "image/png")},
        fragment_shows="not an image",
    ),
    "contact": Endpoint("get", lambda w: reverse("public:contact"), '<div id="contact-panel"', 200),
    "contact refused": Endpoint(
        "post",
        lambda w: reverse("public:contact"),
        '<div id="contact-panel"',
        200,
        data=lambda: {"name": "Eve"},
        fragment_shows="This field is required.",
    ),
    "service": Endpoint(
        "get", lambda w: reverse("services:detail", args=[SERVICE]), '<div id="service-panel"', 200
    ),
    "admin credits refused": Endpoint(
        "post",
        lambda w: reverse("admin_dashboard:user_adjust", args=[w.customer.pk]),
        '<div id="credits-panel"',
        400,
        data=lambda: {"direction": "grant", "amount": "-1", "reason": "gift", "token": "x"},
        fragment_shows="Ensure this value is greater than or equal to 0.01.",
    ),
    "admin products": Endpoint(
        "get", lambda w: reverse("admin_dashboard:products"), '<div id="products-panel"', 200
    ),
    "admin service toggle": Endpoint(
        "post",
        lambda w: reverse("admin_dashboard:service_toggle", args=[SERVICE]),
        f'<tr id="service-{SERVICE}"',
        302,
        fragment_shows="Switch on",
    ),
}


@pytest.fixture
def world(client: Client) -> World:
    ensure_service_rows()
    users = get_user_model().objects
    staff = users.create_user(email="staff@example.com", password=None, is_staff=True)
    customer = users.create_user(email="customer@example.com", password=None)
    client.force_login(staff)
    return World(staff=staff, customer=customer)


def _send(client: Client, world: World, endpoint: Endpoint, headers: dict[str, str]) -> Any:
    send = client.get if endpoint.method == "get" else client.post
    return send(endpoint.url(world), endpoint.data(), headers=headers)


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
@pytest.mark.parametrize("endpoint", ENDPOINTS.values(), ids=ENDPOINTS.keys())
def test_htmx_gets_the_fragment_and_everyone_else_the_page(client, world, endpoint, htmx):
    response = _send(client, world, endpoint, HTMX if htmx else {})
    html = response.content.decode()

    if htmx:
        # htmx swaps 2xx answers only, so even a refused form answers 200.
        assert response.status_code == 200
        assert html.lstrip().startswith(endpoint.fragment_starts)
        assert "<html" not in html
        assert endpoint.fragment_shows in html
    else:
        assert response.status_code == endpoint.page_status
        if endpoint.page_status == 302:
            return
        assert "<html" in html
        assert html.count(endpoint.fragment_starts) == 1  # the page holds the partial in place
    # A shared cache must not hand one kind of answer to the other kind of request.
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    "headers",
    [{**HTMX, "HX-Boosted": "true"}, {**HTMX, "HX-History-Restore-Request": "true"}],
    ids=["boosted", "history restore"],
)
def test_htmx_replacing_the_whole_body_gets_the_whole_page(client, world, headers):
    response = client.get(reverse("services:detail", args=[SERVICE]), headers=headers)
    html = response.content.decode()

    assert "<html" in html and 'id="service-panel"' in html
    assert "hx-swap-oob" not in html  # the balance goes out of band in fragments only
    assert {"HX-Request", "HX-Boosted", "HX-History-Restore-Request"} <= {
        name.strip() for name in response["Vary"].split(",")
    }


_FILE_LOADERS = [
    "django.template.loaders.filesystem.Loader",
    "django.template.loaders.app_directories.Loader",
]


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "reading the files each time"])
def test_partials_load_through_cached_and_uncached_loaders(cached: bool, tmp_path: Path) -> None:
    """Development reads templates from disk on every request, production caches them:
    a page's partial loads either way, and without the cache an edit shows at once."""
    loaders: list[Any] = (
        [("django.template.loaders.cached.Loader", _FILE_LOADERS)] if cached else _FILE_LOADERS
    )
    page = tmp_path / "page.html"
    page.write_text(
        "{% load partials %}<main>{% partialdef part inline %}<p>one</p>{% endpartialdef %}</main>"
    )
    engine = DjangoTemplates(
        {
            "NAME": "partials-test",
            "DIRS": [tmp_path, settings.BASE_DIR / "templates"],
            "APP_DIRS": False,
            "OPTIONS": {"loaders": [("template_partials.loader.Loader", loaders)]},
        }
    )

    assert engine.get_template("page.html").render() == "<main><p>one</p></main>"
    assert engine.get_template("page.html#part").render() == "<p>one</p>"
    products = engine.get_template("admin_dashboard/products.html#products-panel")
    assert products.render({"products": []}).lstrip().startswith('<div id="products-panel">')

    page.write_text(page.read_text().replace("one", "two"))
    assert engine.get_template("page.html#part").render() == (
        "<p>one</p>" if cached else "<p>two</p>"
    )
