"""HTMX the Falco way: a page and its fragment come from one view.

A view renders its full-page template; an htmx request gets only the named
partial (a template the page includes), so the same URL serves both and every
form still works as a plain POST without JavaScript.
"""

from typing import Any

from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers


def is_htmx(request: HttpRequest) -> bool:
    """Return True for requests htmx sent (it sets ``HX-Request: true``)."""
    return request.headers.get("HX-Request") == "true"


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str,
    status: int = 200,
) -> TemplateResponse:
    """Render ``partial`` for htmx requests and ``template`` (which includes it) otherwise."""
    response = TemplateResponse(
        request, partial if is_htmx(request) else template, context, status=status
    )
    # Caches must not hand the fragment to a full-page request or the reverse.
    patch_vary_headers(response, ["HX-Request"])
    return response
