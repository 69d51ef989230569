"""The API keys page: create a key (shown once), revoke one, see each key's usage."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from api import selectors
from api.forms import APIKeyCreateForm
from api.services import api_key_create, api_key_revoke
from users.models import CustomUser


def _user(request: HttpRequest) -> CustomUser:
    user = request.user
    if not isinstance(user, CustomUser):  # login_required ran first
        raise Http404
    return user


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_keys_page(request: HttpRequest) -> HttpResponse:
    """List the user's keys; a POST creates one and shows its full text this once."""
    user = _user(request)
    form = APIKeyCreateForm(request.POST or None)
    new_key = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _, new_key = api_key_create(user, name=form.cleaned_data["name"])
            form = APIKeyCreateForm()
        else:
            status = 422
    context = {"keys": selectors.api_keys(user), "form": form, "new_key": new_key}
    return TemplateResponse(request, "api/keys.html", context, status=status)


@login_required
@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    """Revoke one of the user's keys, then go back to the list."""
    key = api_key_revoke(_user(request), key_id=key_id)
    if key is None:
        raise Http404("No such key.")
    messages.success(request, f"Revoked {key.name}. Requests with it now get 401.")
    return redirect("api_keys:list")
