"""The About page says what the product is, with working links to the pages it names."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from common.testing.html import texts

pytestmark = pytest.mark.django_db


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.in_main = False
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "main":
            self.in_main = True
        elif tag == "a" and self.in_main:
            self.hrefs.append(str(dict(attrs).get("href")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "main":
            self.in_main = False


def test_the_about_page_explains_the_product_in_sections(client, settings):
    html = client.get(reverse("public:about")).content.decode()
    sections = texts(html)

    assert sections["about-summary"].startswith(f"{settings.PROJECT_NAME} runs AI services")
    assert [
        sections[key]
        for key in sorted(sections)
        if key.startswith("about-") and key != "about-summary"
    ] == [
        "Talk to us",
        "Credits, plainly",
        "For developers",
        "How it works",
        "Your account and your data",
    ]
    assert "lorem" not in html.lower()


def test_every_link_in_the_about_text_leads_somewhere(client, django_user_model):
    html = client.get(reverse("public:about")).content.decode()
    parser = _Links()
    parser.feed(html)

    assert set(parser.hrefs) == {
        reverse("credits:dashboard"),
        reverse("api_keys:list"),
        reverse("public:contact"),
        reverse("stripe_manager:pricing"),
    }
    client.force_login(django_user_model.objects.create_user(email="reader@example.com"))
    for href in parser.hrefs:
        assert client.get(href).status_code == 200, href
