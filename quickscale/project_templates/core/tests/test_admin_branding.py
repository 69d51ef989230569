"""The Django admin wears the project's name and brand colour, in light and dark, CSP-clean."""

from typing import Any

import pytest
from django.test import Client

from common.testing.browser import log_in
from common.testing.html import texts
from core.tests.test_browser_theme import contrast, hue, luminance
from users.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

BRAND_HUE = 171


def test_the_admin_is_named_after_the_project(admin_client: Client, settings: Any) -> None:
    page = admin_client.get("/admin/").content.decode()

    assert f"<title>Manage {settings.PROJECT_NAME} | {settings.PROJECT_NAME} admin</title>" in page
    assert texts(page)["site-name"] == f"{settings.PROJECT_NAME} admin"
    assert "/static/css/admin.css" in page
    assert "Django administration" not in page


def test_the_admin_sign_in_page_is_branded_too(client: Client, settings: Any) -> None:
    page = client.get("/admin/login/").content.decode()

    assert texts(page)["site-name"] == f"{settings.PROJECT_NAME} admin"
    assert client.get("/static/css/admin.css").status_code == 200


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_admin_header_and_links_take_the_brand_colour(page: Any, scheme: str) -> None:
    make_user("boss@example.com", is_staff=True, is_superuser=True)
    page.emulate_media(color_scheme=scheme)
    log_in(page, "boss@example.com", PASSWORD)
    page.goto("/admin/users/customuser/")

    style = "(e, p) => getComputedStyle(e)[p]"
    header = page.locator("#header")
    header_bg = header.evaluate(style, "backgroundColor")
    assert abs(hue(header_bg) - BRAND_HUE) < 3, header_bg
    name = page.locator("#site-name a").evaluate(style, "color")
    assert contrast(name, header_bg) >= 4.5, (name, header_bg)

    body_bg = page.locator("body").evaluate(style, "backgroundColor")
    assert (luminance(body_bg) < 0.05) == (scheme == "dark"), body_bg
    link = page.locator("#result_list tbody th a").first.evaluate(style, "color")
    assert abs(hue(link) - BRAND_HUE) < 3, link
    assert contrast(link, body_bg) >= 4.5, (link, body_bg)
    caption = page.locator("#changelist-filter h2").first
    caption_bg = caption.evaluate(style, "backgroundColor")
    assert contrast(caption.evaluate(style, "color"), caption_bg) >= 4.5, caption_bg
