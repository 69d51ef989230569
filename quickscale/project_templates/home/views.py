"""The signed-in home; thin: one read (``home.overview``) and a template."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from home.overview import overview
from users.models import CustomUser


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Balance, plan, 30 days of use, recent calls, the services and what to do next."""
    user = request.user
    if not isinstance(user, CustomUser):  # login_required ran first
        raise Http404
    return TemplateResponse(request, "home/index.html", {"overview": overview(user)})
