"""Staff without two-factor are sent to set it up before the admin pages open."""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse

from users.mfa import has_second_factor

STAFF_MFA_MESSAGE = "Staff accounts need two-factor authentication: turn it on to open the admin."


def _guarded_prefixes() -> tuple[str, ...]:
    """The staff areas: the admin dashboard and Django's admin."""
    prefixes = []
    for name in ("admin_dashboard:dashboard", "admin:index"):
        try:
            prefixes.append(reverse(name))
        except NoReverseMatch:  # a project that removed one of them
            continue
    return tuple(prefixes)


class StaffMFAMiddleware:
    """With MFA_REQUIRED_FOR_STAFF on, redirect staff without a second factor to its setup.

    Only the staff areas are guarded, so a staff member can still use the site,
    set up two-factor and sign out. A second factor is an authenticator app or a
    passkey (recovery codes alone are not one).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            getattr(settings, "MFA_REQUIRED_FOR_STAFF", False)
            and user is not None
            and user.is_authenticated
            and user.is_staff
            and request.path.startswith(_guarded_prefixes())
            and not has_second_factor(user)
        ):
            messages.warning(request, STAFF_MFA_MESSAGE)
            return HttpResponseRedirect(reverse("mfa_index"))
        return self.get_response(request)
