"""Who may see the dashboard: staff only.

Anonymous visitors are sent to sign in; signed-in users who are not staff get
403 (a redirect would only loop them back to a page they cannot see).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from users.models import CustomUser

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Let staff through; send anonymous users to sign in; refuse everyone else with 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("This page is for staff only.")
        return view(request, *args, **kwargs)

    return wrapper


def acting_staff(request: HttpRequest) -> CustomUser:
    """The signed-in staff member (views call this after ``staff_required``)."""
    user = request.user
    if not isinstance(user, CustomUser):
        raise Http404
    return user
