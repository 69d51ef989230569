"""Public pages: plain templates, no data of their own yet."""

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


def index(request: HttpRequest) -> HttpResponse:
    """Landing page: what the product does and a way in."""
    return TemplateResponse(request, "public/index.html")


def about(request: HttpRequest) -> HttpResponse:
    """About page."""
    return TemplateResponse(request, "public/about.html")
