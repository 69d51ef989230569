"""A URLconf for test_outage: a view with a bug, which must stay a 500."""

from django.http import HttpRequest, HttpResponse
from django.urls import path


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug, not an outage")


urlpatterns = [path("broken/", broken)]
