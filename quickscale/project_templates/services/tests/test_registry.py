import sys
import textwrap

import pytest
from django.core.exceptions import ImproperlyConfigured

from services import registry
from services.base import BaseService
from services.exceptions import UnknownService
from services.registry import (
    create_service_instance,
    discover_services,
    register_service,
    registered_services,
)

pytestmark = pytest.mark.usefixtures("isolated_registry")


def test_the_default_services_are_registered_at_start_up():
    assert {
        "text_sentiment_analysis",
        "image_metadata_extractor",
        "demo_free_service",
        "text_summarizer",
        "batch_sentiment_analysis",
    } <= set(registered_services())


def test_a_registered_class_gets_its_name_and_is_instantiated_by_name():
    @register_service("test_named_service")
    class Named(BaseService):
        pass

    assert Named.name == "test_named_service"
    assert isinstance(create_service_instance("test_named_service"), Named)


def test_an_unknown_name_raises_unknown_service():
    with pytest.raises(UnknownService):
        create_service_instance("no_such_service")


def test_two_classes_cannot_take_the_same_name():
    @register_service("test_taken_name")
    class First(BaseService):
        pass

    with pytest.raises(ImproperlyConfigured, match="Two classes"):

        @register_service("test_taken_name")
        class Second(BaseService):
            pass


@pytest.mark.parametrize("name", ["../etc", "with space", "1starts_with_digit", "", "a-b"])
def test_a_name_that_is_not_an_identifier_is_refused(name):
    with pytest.raises(ImproperlyConfigured):
        register_service(name)


def test_every_module_dropped_into_a_discovered_package_is_registered(tmp_path, monkeypatch):
    package = tmp_path / "dropin_services"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "shiny.py").write_text(
        textwrap.dedent(
            """
            from services.base import BaseService
            from services.registry import register_service

            @register_service("test_dropped_in")
            class Shiny(BaseService):
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "DISCOVERED_PACKAGES", ("dropin_services",))
    try:
        discover_services()
        assert "test_dropped_in" in registered_services()
    finally:
        sys.modules.pop("dropin_services.shiny", None)
        sys.modules.pop("dropin_services", None)
