"""/favicon.ico is a real icon in the brand colour, and every page links it."""

import io
from html.parser import HTMLParser

import pytest
from PIL import Image

pytestmark = pytest.mark.django_db

BRAND = (0, 209, 178)  # Bulma's primary, #00d1b2, the colour of static/favicon.svg


class _IconLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and values.get("rel") == "icon" and values.get("href"):
            self.hrefs.append(str(values["href"]))


def icon_links(html: str) -> list[str]:
    parser = _IconLinks()
    parser.feed(html)
    return parser.hrefs


def test_favicon_ico_is_an_icon_in_the_brand_colour(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert "max-age=86400" in response["Cache-Control"]
    icon = Image.open(io.BytesIO(response.content))
    assert icon.format == "ICO"
    assert {(16, 16), (32, 32)} <= set(icon.info["sizes"])
    pixels = icon.convert("RGB")  # the largest size, 48 px: the SVG's 32 units at 1.5x
    assert pixels.size == (48, 48)
    assert pixels.getpixel((6, 24)) == BRAND  # the square's left edge
    bar = pixels.getpixel((25, 20))  # the middle bar: white
    assert isinstance(bar, tuple) and min(bar) > 240, bar


def test_head_answers_too_and_other_methods_do_not(client):
    assert client.head("/favicon.ico").status_code == 200
    assert client.post("/favicon.ico").status_code == 405


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/no-such-page/"])
def test_pages_link_the_ico_and_the_svg_and_both_are_served(client, path):
    hrefs = icon_links(client.get(path).content.decode())

    assert "/favicon.ico" in hrefs
    assert any(href.endswith(".svg") for href in hrefs)
    for href in hrefs:
        assert client.get(href).status_code == 200, href
