"""Django's form renderer, with the plain input and textarea widgets built in Python.

Rendering a widget through the template engine costs a template lookup, an
``{% include %}`` of attrs.html and a context stack per field; on a page with a
small form that was a large share of the request. ``FastDjangoTemplates`` builds
the same markup as Django's own ``input.html``/``attrs.html``/``textarea.html``
directly, and only while those templates are still the ones it mirrors (checked
once per template name against their source); every other template (selects,
file inputs, form and field layouts) goes through the engine as before.
``common/tests/test_form_renderer.py`` compares the output with Django's renderer.
"""

from __future__ import annotations

from typing import Any

from django.forms.renderers import DjangoTemplates
from django.http import HttpRequest
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeData

INPUT = "django/forms/widgets/input.html"
TEXTAREA = "django/forms/widgets/textarea.html"
_SOURCES = {
    INPUT: (
        '<input type="{{ widget.type }}" name="{{ widget.name }}"{% if widget.value != None %}'
        " value=\"{{ widget.value|stringformat:'s' }}\"{% endif %}"
        '{% include "django/forms/widgets/attrs.html" %}>'
    ),
    TEXTAREA: (
        '<textarea name="{{ widget.name }}"{% include "django/forms/widgets/attrs.html" %}>\n'
        "{% if widget.value %}{{ widget.value }}{% endif %}</textarea>"
    ),
    "django/forms/widgets/attrs.html": (
        "{% for name, value in widget.attrs.items %}{% if value is not False %} {{ name }}"
        "{% if value is not True %}=\"{{ value|stringformat:'s' }}\"{% endif %}{% endif %}"
        "{% endfor %}"
    ),
}
_INCLUDES_INPUT = '{% include "django/forms/widgets/input.html" %}'


def _formatted(value: Any) -> str:
    """``{{ value|stringformat:'s' }}``: str(), escaped unless already safe."""
    text = str(value)
    return text if isinstance(value, SafeData) else escape(text)


def _attrs(attrs: dict[str, Any]) -> str:
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        parts.append(f" {conditional_escape(name)}")
        if value is not True:
            parts.append(f'="{_formatted(value)}"')
    return "".join(parts)


class FastDjangoTemplates(DjangoTemplates):
    """``DjangoTemplates`` with Python fast paths for the input and textarea widgets."""

    def __init__(self) -> None:
        super().__init__()
        self._kinds: dict[str, str | None] = {}

    def _kind(self, template_name: str) -> str | None:
        """INPUT or TEXTAREA when ``template_name`` renders exactly that, else None."""
        if template_name not in self._kinds:
            kind, source = None, self._source(template_name)
            mirrored = template_name
            if source == _INCLUDES_INPUT:
                mirrored, source = INPUT, self._source(INPUT)
            if mirrored in (INPUT, TEXTAREA) and source == _SOURCES[mirrored]:
                attrs = self._source("django/forms/widgets/attrs.html")
                kind = mirrored if attrs == _SOURCES["django/forms/widgets/attrs.html"] else None
            self._kinds[template_name] = kind
        return self._kinds[template_name]

    def _source(self, template_name: str) -> str:
        return str(self.get_template(template_name).template.source).strip()

    def render(
        self, template_name: str, context: dict[str, Any], request: HttpRequest | None = None
    ) -> str:
        kind = self._kind(template_name)
        widget = context.get("widget") if kind else None
        if widget is None:
            return str(super().render(template_name, context, request))
        name = conditional_escape(widget["name"])
        value = widget["value"]
        if kind == TEXTAREA:
            body = conditional_escape(value) if value else ""
            return f'<textarea name="{name}"{_attrs(widget["attrs"])}>\n{body}</textarea>'
        shown = f' value="{_formatted(value)}"' if value is not None else ""
        widget_type = conditional_escape(widget["type"])
        return f'<input type="{widget_type}" name="{name}"{shown}{_attrs(widget["attrs"])}>'
