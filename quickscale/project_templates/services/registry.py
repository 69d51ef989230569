"""The service registry: ``@register_service`` and ``create_service_instance``.

Service classes register themselves by name when their module is imported.
``discover_services`` (called once from ``ServicesConfig.ready``) imports the
default services and every module in ``services/custom/``, so adding a file
there is all it takes; there is no import list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

from services.base import BaseService
from services.exceptions import UnknownService
from services.models import SERVICE_NAME_PATTERN

ServiceClass = TypeVar("ServiceClass", bound=type[BaseService])

NAME_PATTERN = SERVICE_NAME_PATTERN
DISCOVERED_PACKAGES = ("services.defaults", "services.custom")

_registry: dict[str, type[BaseService]] = {}


def register_service(name: str) -> Callable[[ServiceClass], ServiceClass]:
    """Register the decorated ``BaseService`` subclass under ``name``."""
    if not NAME_PATTERN.match(name):
        raise ImproperlyConfigured(
            f"Service name {name!r} is not a Python identifier of at most 100 characters."
        )

    def decorate(cls: ServiceClass) -> ServiceClass:
        existing = _registry.get(name)
        if existing is not None and _qualified(existing) != _qualified(cls):
            raise ImproperlyConfigured(
                f"Two classes register the service {name!r}: {_qualified(existing)} and "
                f"{_qualified(cls)}. Rename one of them."
            )
        cls.name = name
        _registry[name] = cls
        return cls

    return decorate


def create_service_instance(name: str) -> BaseService:
    """Return a new instance of the service class registered as ``name``."""
    try:
        cls = _registry[name]
    except KeyError:
        raise UnknownService(name) from None
    return cls()


def registered_services() -> dict[str, type[BaseService]]:
    """Return every registered class by name (a copy)."""
    return dict(sorted(_registry.items()))


def discover_services() -> None:
    """Import every module of the default and custom service packages."""
    for package_name in DISCOVERED_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{package_name}.{module.name}")


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
