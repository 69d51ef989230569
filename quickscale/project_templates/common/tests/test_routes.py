"""``{% route %}``: reversed once per process, per URLconf and script prefix."""

from collections.abc import Iterator

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.urls import NoReverseMatch, get_script_prefix, reverse, set_script_prefix


def _render(source: str) -> str:
    return Template("{% load routes %}" + source).render(Context())


@pytest.fixture
def script_prefix() -> Iterator[None]:
    before = get_script_prefix()
    yield
    set_script_prefix(before)


def test_route_renders_the_reversed_path():
    assert _render("{% route 'public:about' %}") == reverse("public:about")


def test_route_reverses_a_name_once_per_process(monkeypatch):
    from common.templatetags import routes

    calls: list[str] = []

    def counting_reverse(name: str) -> str:
        calls.append(name)
        return reverse(name)

    monkeypatch.setattr(routes, "reverse", counting_reverse)
    monkeypatch.setattr(routes, "_paths", {})

    for _ in range(3):
        assert _render("{% route 'public:contact' %}") == "/contact/"

    assert calls == ["public:contact"]


def test_each_script_prefix_gets_its_own_path(script_prefix):
    assert _render("{% route 'public:about' %}") == "/about/"

    set_script_prefix("/app/")

    assert _render("{% route 'public:about' %}") == "/app/about/"


def test_each_urlconf_gets_its_own_path():
    assert _render("{% route 'public:about' %}") == "/about/"

    with override_settings(ROOT_URLCONF="common.tests.routes_urls"):
        assert _render("{% route 'about' %}") == "/elsewhere/about/"
        with pytest.raises(NoReverseMatch):
            _render("{% route 'public:about' %}")

    assert _render("{% route 'public:about' %}") == "/about/"


def test_an_unknown_name_fails_like_url_does():
    with pytest.raises(NoReverseMatch):
        _render("{% route 'public:nowhere' %}")
