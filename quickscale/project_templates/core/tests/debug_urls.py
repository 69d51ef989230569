"""A URLconf for common.tests.test_debug_pages: the project's pages plus a view with a bug."""

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path

from core.urls import urlpatterns as project_urlpatterns


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug to read the traceback of")


urlpatterns: list[URLPattern | URLResolver] = [path("broken/", broken), *project_urlpatterns]
