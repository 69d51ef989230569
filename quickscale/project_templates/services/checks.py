"""System check: every registered service's ``result_template`` exists.

A missing one would fail the page after the call was charged; ``check`` (and
every ``runserver``/``bootstrap``) says so first.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error
from django.template import TemplateDoesNotExist
from django.template.loader import get_template

from services.registry import registered_services


def check_result_templates(**kwargs: Any) -> list[CheckMessage]:
    """An error for each service whose ``result_template`` cannot be loaded."""
    errors: list[CheckMessage] = []
    for name, cls in registered_services().items():
        try:
            get_template(cls.result_template)
        except TemplateDoesNotExist:
            errors.append(
                Error(
                    f"The service {name!r} names result_template={cls.result_template!r}, "
                    "which does not exist.",
                    hint="Create it, or remove result_template to list the result's fields.",
                    obj=cls,
                    id="services.E001",
                )
            )
    return errors
