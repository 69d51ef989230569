from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.templatetags.static import static
from django.urls import reverse


@pytest.mark.django_db
def test_landing_page_renders_and_links_the_vendored_bulma(client):
    response = client.get(reverse("public:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="{static("vendor/bulma/bulma.min.css")}"' in html
    assert f'href="{reverse("account_signup")}"' in html
    assert f'href="{reverse("account_login")}"' in html


@pytest.mark.django_db
def test_landing_page_shows_the_project_name_from_settings(client, settings):
    settings.PROJECT_NAME = "Acme Writer"
    assert "Acme Writer" in client.get("/").content.decode()


@pytest.mark.django_db
def test_about_page_renders(client):
    assert client.get(reverse("public:about")).status_code == 200


@pytest.mark.django_db
def test_pages_load_only_local_scripts_and_styles(client):
    html = client.get("/").content.decode()
    assert "http://" not in html
    assert "https://" not in html


class LinkCollector(HTMLParser):
    """Collect the href of every link inside the navbar."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "nav":
            self.depth += 1
        elif tag == "a" and self.depth:
            self.links.extend(value or "" for name, value in attrs if name == "href")

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self.depth -= 1


def navbar_links(client) -> list[str]:
    collector = LinkCollector()
    collector.feed(client.get("/").content.decode())
    return collector.links


@pytest.mark.django_db
def test_the_navbar_leads_to_pricing_and_signed_in_users_to_billing_and_api_keys(client):
    pricing = reverse("stripe_manager:pricing")
    assert pricing in navbar_links(client)
    assert reverse("api_keys:list") not in navbar_links(client)

    client.force_login(get_user_model().objects.create_user(email="navbar@example.com"))
    links = navbar_links(client)
    for url in (pricing, reverse("stripe_manager:billing"), reverse("api_keys:list")):
        assert url in links
        assert client.get(url).status_code == 200, url
