"""``{% load services_ui %}``: a service's title and icon, and a result's values as UI."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.safestring import SafeString

from services import presentation
from services.icons import icon_html
from services.result_display import as_text

register = template.Library()


@register.filter
def service_title(name: object) -> str:
    """The title of the service named ``name``: ``Sentiment analysis``."""
    return presentation.title_of(str(name))


@register.filter
def service_icon(name: object) -> SafeString:
    """The icon of the service named ``name``, as inline SVG."""
    return icon_html(presentation.icon_of(str(name)))


@register.filter
def icon_svg(icon: object) -> SafeString:
    """A service's ``icon`` (a name of ``services/icons.py``) as inline SVG."""
    return icon_html(str(icon))


@register.filter
def field_label(key: object) -> str:
    """A result's key as a label: ``size_bytes`` -> ``Size bytes``."""
    return presentation.field_label(str(key))


@register.filter
def result_text(value: Any) -> str:
    """A JSON value on one line (objects as ``key value · ...``, lists with commas)."""
    return as_text(value)


@register.filter
def percent(value: Any) -> int:
    """A fraction (0 to 1) as a whole percentage, clamped: 0.482 -> 48."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return round(min(max(number, 0.0), 1.0) * 100)


@register.filter
def score_percent(value: Any) -> int:
    """A score from -1 to 1 placed on a 0-100 scale: -1 -> 0, 0 -> 50, 1 -> 100."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 50
    return round((min(max(number, -1.0), 1.0) + 1) * 50)


# A raw result longer than this is left to the API: a page (polled, for a job) stays light.
MAX_RAW_JSON_CHARS = 100_000


@register.filter
def pretty_json(value: Any) -> str:
    """``value`` as indented JSON for the raw result; "" past ``MAX_RAW_JSON_CHARS``."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_RAW_JSON_CHARS else ""


@register.filter
def is_list(value: Any) -> bool:
    """True for a JSON array."""
    return isinstance(value, list)


@register.filter
def entries(value: Any) -> list[tuple[str, Any]]:
    """A JSON object's (key, value) pairs; ``.items`` in a template would read a key named items."""
    return list(value.items()) if isinstance(value, dict) else []
