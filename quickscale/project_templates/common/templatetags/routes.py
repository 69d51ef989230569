"""``{% route "name" %}``: the path of a named URL without arguments, reversed once per process.

The page shell (navbar, user menu, footer) links to about fifteen named URLs,
and ``{% url %}`` walks the resolver for each on every page: about 0.3 ms of a
page's 2-5 ms. A URL without arguments always reverses to the
same path for a given URLconf, script prefix and language (i18n_patterns), so
the result is kept per process under all three; a test that swaps ROOT_URLCONF
or a deployment under a SCRIPT_NAME gets entries of its own (these come from
configuration, never from a request, so there are few). Use ``{% url %}`` for
anything with arguments, a ``current_app`` or ``as var``.
"""

from __future__ import annotations

from django import template
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.translation import get_language

register = template.Library()

_paths: dict[tuple[str, str, str, str | None], str] = {}


@register.simple_tag
def route(name: str) -> str:
    """Return ``reverse(name)``, remembered for this URLconf, script prefix and language."""
    key = (name, str(get_urlconf() or settings.ROOT_URLCONF), get_script_prefix(), get_language())
    path = _paths.get(key)
    if path is None:
        path = _paths[key] = reverse(name)
    return path
