"""HTMX the same way in every view: one URL serves a page and its fragment.

A page template marks the part htmx swaps with ``{% partialdef name inline %}``
(django-template-partials). The view calls ``render(request, "page.html",
context, partial="name")``: an htmx request gets ``page.html#name`` only, any
other request the whole page, so every form still works as a plain POST without
JavaScript. ``request.htmx`` comes from django-htmx's middleware.
"""

from typing import Any

from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers
from django_htmx.middleware import HtmxDetails

# Every header that decides between the fragment and the page: a shared cache
# must key on all of them, or it could hand a fragment to a page request.
FRAGMENT_HEADERS = ("HX-Request", "HX-Boosted", "HX-History-Restore-Request")


def wants_fragment(request: HttpRequest) -> bool:
    """Return True when htmx asks for a fragment to swap in.

    Boosted links and forms, and htmx restoring a page missing from its history
    cache, send ``HX-Request`` too but replace the whole body, so they get the page.
    """
    htmx: HtmxDetails = request.htmx  # type: ignore[attr-defined]  # set by HtmxMiddleware
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(
    request: HttpRequest,
    template_name: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str,
    status: int = 200,
) -> TemplateResponse:
    """Render ``template_name``, or only its ``partial`` when htmx asks for a fragment.

    ``status`` is the whole page's. A fragment always answers 200: htmx swaps only
    2xx answers, so a refused form shows its errors in the fragment itself.
    """
    if wants_fragment(request):
        template_name, status = f"{template_name}#{partial}", 200
    response = TemplateResponse(request, template_name, context, status=status)
    # django-htmx leaves Vary alone; without it a cache could mix the two answers.
    patch_vary_headers(response, FRAGMENT_HEADERS)
    return response
