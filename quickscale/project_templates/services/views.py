"""Service pages: the list, one page per service (HTMX form + result), usage history.

Thin: each view validates a form, calls one selector or ``BaseService.run``, and
renders. A service page answers an htmx POST with its ``service-panel`` partial
(form and result) plus the navbar balance as an out-of-band swap; without
JavaScript the same POST renders the whole page.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_http_methods

from common.concurrency import CallSlotsBusy, call_slot
from common.htmx import render, wants_fragment
from credits.exceptions import InsufficientCredits
from services import selectors
from services.exceptions import (
    ServiceFailed,
    ServiceInputError,
    ServiceUnavailable,
    UnknownService,
)
from services.registry import create_service_instance
from users.models import CustomUser


def _user(request: HttpRequest) -> CustomUser:
    user = request.user
    if not isinstance(user, CustomUser):  # login_required ran first
        raise Http404
    return user


@login_required
@require_GET
def service_list(request: HttpRequest) -> HttpResponse:
    """List the active services with their cost."""
    return TemplateResponse(
        request, "services/list.html", {"services": selectors.active_services()}
    )


@login_required
@require_http_methods(["GET", "POST"])
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Show a service's form; on POST run it and show the result or what went wrong."""
    user = _user(request)
    try:
        instance = create_service_instance(name)
        service = instance.configuration()  # read once: run() charges by this row
    except (UnknownService, ServiceUnavailable):
        raise Http404("No such service, or it is switched off.") from None
    form = instance.form_class(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"service": service, "form": form, "result": None, "error": ""}
    busy: CallSlotsBusy | None = None
    if request.method == "POST" and form.is_valid():
        try:
            with call_slot(f"web-user:{user.pk}"):
                outcome = instance.run(user, origin="web", **form.cleaned_data)
        except CallSlotsBusy as error:
            busy = error
            context["error"] = str(error)
        except ServiceInputError as error:
            for field, messages in error.details.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
            if not error.details:
                form.add_error(None, error.message)
        except (InsufficientCredits, ServiceUnavailable, ServiceFailed) as error:
            context["error"] = str(error)
        else:
            context["result"] = outcome.result
            context["usage"] = outcome.usage
    context["oob_balance"] = wants_fragment(request)
    status = 200 if request.method == "GET" or context["result"] is not None else 422
    if busy is not None:
        status = 429
    response = render(
        request, "services/detail.html", context, partial="service-panel", status=status
    )
    if busy is not None:
        response["Retry-After"] = str(busy.retry_after)
    return response


@login_required
@require_GET
def usage_history(request: HttpRequest) -> HttpResponse:
    """Show a page of the user's calls, newest first."""
    page = selectors.usage_page(_user(request), page=request.GET.get("page"))
    return TemplateResponse(request, "services/usage.html", {"page": page})
