"""A second URLconf for test_routes: the same URL name at another path."""

from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("elsewhere/about/", lambda request: HttpResponse(), name="about")]
