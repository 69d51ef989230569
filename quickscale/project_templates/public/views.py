"""Public pages: landing, about and contact."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods

from common import ratelimit
from common.client_ip import client_ip
from common.htmx import render, wants_fragment
from public.forms import ContactForm
from public.services import contact_message_create


def index(request: HttpRequest) -> HttpResponse:
    """Landing page: what the product does and a way in."""
    return TemplateResponse(request, "public/index.html")


def about(request: HttpRequest) -> HttpResponse:
    """About page."""
    return TemplateResponse(request, "public/about.html")


def _signed_in_initial(user: Any) -> dict[str, str]:
    """A signed-in user's name (their profile's, else the account's) and email.

    Read through the user's relation: public does not import users (import contracts),
    and an account whose profile was never opened has none yet (nothing is created here).
    """
    if not user.is_authenticated:
        return {}
    try:
        name = user.profile.full_name
    except ObjectDoesNotExist:
        name = ""
    return {
        "name": (name or user.get_full_name())[: ContactForm.NAME_MAX_LENGTH],
        "email": user.email,
    }


@require_http_methods(["GET", "POST"])
def contact(request: HttpRequest) -> HttpResponse:
    """Contact form: stored, emailed to staff, rate-limited per client IP.

    A signed-in user finds their name and email filled in.
    """
    initial = _signed_in_initial(request.user)
    form = ContactForm(request.POST or None, initial=initial)
    sent = False
    status = 200
    if request.method == "POST":
        ip = client_ip(request)
        decision = ratelimit.hit(
            "contact",
            ip or "unknown",
            limit=settings.CONTACT_RATE_LIMIT_PER_HOUR,
            window_seconds=3600,
        )
        if not decision.allowed:
            form.add_error(None, "You sent several messages in the last hour. Please wait a while.")
            status = 429
        elif form.is_valid():
            if not form.is_spam():  # bots get the same answer and nothing is stored
                data = form.cleaned_data
                contact_message_create(
                    name=data["name"],
                    email=data["email"],
                    subject=data["subject"],
                    message=data["message"],
                    ip_address=ip,
                )
            if not wants_fragment(request):
                messages.success(request, "Thank you, your message was sent. We will reply soon.")
                return redirect("public:contact")
            sent = True
            form = ContactForm(initial=initial)
    return render(
        request,
        "public/contact.html",
        {"form": form, "sent": sent},
        partial="contact-panel",
        status=status,
    )
