"""Service pages: the list, one page per service (HTMX form + result), usage history, jobs.

Thin: each view validates a form, calls one selector, ``BaseService.run`` or one
function of ``services.jobs``, and renders. A service page answers an htmx POST
with its ``service-panel`` partial (form and result) plus the navbar balance as
an out-of-band swap; without JavaScript the same POST renders the whole page.

A long-running service's page starts a job instead (``enqueue_job``) and sends
the browser to the job's page (303, or ``HX-Redirect`` for htmx). The job page
polls its ``job-panel`` partial every 2 s while the job is queued or running:
the server stops writing the polling attributes once the job has ended, so
the last fragment swapped in ends the polling (and polls less often as a job
gets older). Without JavaScript the page
offers a Refresh link instead. A job's result file is served to its owner only,
as an attachment (``services/downloads.py``).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from common.concurrency import CallSlotsBusy, call_slot
from common.htmx import render, wants_fragment
from common.pagination import capped_page, page_number
from credits.exceptions import InsufficientCredits
from services import jobs, selectors
from services.base import BaseService
from services.downloads import result_file_name, result_file_response
from services.exceptions import (
    JobAlreadyFinished,
    JobNotFound,
    JobNotSupported,
    ServiceFailed,
    ServiceInputError,
    ServiceNotConfigured,
    ServiceUnavailable,
    TooManyActiveJobs,
    UnknownService,
)
from services.models import Job, Service
from services.presentation import code_snippets
from services.registry import create_service_instance, registered_services
from services.result_display import result_display
from users.models import CustomUser

# How often a page polls a job that has not ended, by how long it has waited or run: every
# 2 s at first, less often for a long job (one left queued while no worker runs, say).
POLL_SECONDS = ((60, 2), (600, 5))
POLL_SECONDS_AFTER = 15


def _user(request: HttpRequest) -> CustomUser:
    user = request.user
    if not isinstance(user, CustomUser):  # login_required ran first
        raise Http404
    return user


@login_required
@require_GET
def service_list(request: HttpRequest) -> HttpResponse:
    """List the active services with their cost (or how they are priced, if not per call)."""
    services = list(selectors.active_services())
    classes = registered_services()
    for service in services:
        service.pricing = _pricing(service)  # type: ignore[attr-defined]
        cls = classes.get(service.name)
        service.per = "item" if cls is not None and cls.long_running else "call"  # type: ignore[attr-defined]
    return TemplateResponse(request, "services/list.html", {"services": services})


def _pricing(service: Service) -> str:
    """How ``service`` is priced when not per call (an LLM service: per token); "" else."""
    try:
        instance = create_service_instance(service.name)
    except UnknownService:
        return ""
    if type(instance).pricing is BaseService.pricing:
        return ""  # priced per call: no query
    instance._configuration = service
    return instance.pricing()


def _said_with_title(error: Exception, name: str, title: str) -> str:
    """``error``'s message with the service's title where it quotes the service's name.

    The message is also the API's, where the registered name is the identifier a
    caller sends; on the page a person knows the service by its title.
    """
    return str(error).replace(f"The service {name!r}", title).replace(repr(name), title)


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
    context: dict[str, Any] = {
        "service": service,
        "form": form,
        "result": None,
        "error": "",
        "long_running": instance.long_running,
        "setup_problem": instance.setup_problem(),
        "pricing": instance.pricing(),
        "title": instance.title(),
        "icon": instance.symbol(),
        "result_template": instance.result_template,
        "snippets": code_snippets(
            type(instance), request.build_absolute_uri(f"/api/services/{service.name}/run")
        ),
        "needs_credits": False,
    }
    busy: CallSlotsBusy | TooManyActiveJobs | None = None
    if context["setup_problem"]:
        # Not configured (an LLM service without its provider's key): say what to set,
        # run nothing, charge nothing.
        context["oob_balance"] = wants_fragment(request)
        status = 503 if request.method == "POST" else 200
        return render(
            request, "services/detail.html", context, partial="service-panel", status=status
        )
    if request.method == "POST" and form.is_valid():
        try:
            if instance.long_running:
                # Enqueueing is one short transaction (hold + row): no call slot to take.
                job = jobs.enqueue_job(instance, user, origin="web", inputs=form.cleaned_data)
                return _go_to(request, reverse("services:job", args=[job.pk]))
            with call_slot(f"web-user:{user.pk}"):
                outcome = instance.run(user, origin="web", **form.cleaned_data)
        except (CallSlotsBusy, TooManyActiveJobs) as error:
            busy = error
            context["error"] = str(error)
        except ServiceInputError as error:
            for field, messages in error.details.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
            if not error.details:
                form.add_error(None, error.message)
        except InsufficientCredits as error:
            context["error"] = str(error)
            context["needs_credits"] = True
        except (
            ServiceUnavailable,
            ServiceNotConfigured,
            ServiceFailed,
            JobNotSupported,
        ) as error:
            context["error"] = _said_with_title(error, name, context["title"])
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
    if isinstance(busy, CallSlotsBusy):
        response["Retry-After"] = str(busy.retry_after)
    return response


@login_required
@require_GET
def usage_history(request: HttpRequest) -> HttpResponse:
    """Show a page of the user's calls, newest first."""
    page = selectors.usage_page(_user(request), page=request.GET.get("page"))
    return TemplateResponse(request, "services/usage.html", {"page": page})


def _go_to(request: HttpRequest, url: str) -> HttpResponse:
    """Send the browser to ``url`` after a POST: 303, or ``HX-Redirect`` for an htmx request.

    An htmx request would follow a 303 itself and swap the whole new page into
    the form's panel; ``HX-Redirect`` makes it load the page instead.
    """
    if wants_fragment(request):
        return HttpResponseClientRedirect(url)
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _own_job(request: HttpRequest, job_id: uuid.UUID) -> Job:
    """The requester's job ``job_id``; 404 for another user's, as for one that does not exist."""
    job = selectors.user_job(_user(request), job_id)
    if job is None:
        raise Http404("No such job.")
    return job


def _poll_seconds(active: list[Job]) -> int:
    """Seconds between polls of a page showing ``active`` jobs: set by the youngest one."""
    now = timezone.now()
    ages = [(now - (job.started_at or job.created_at)).total_seconds() for job in active]
    youngest = min(ages, default=0.0)
    for limit, seconds in POLL_SECONDS:
        if youngest < limit:
            return seconds
    return POLL_SECONDS_AFTER


def _job_page(
    request: HttpRequest, job: Job, *, notice: str = "", status: int = 200
) -> HttpResponse:
    """The job's page, or its ``job-panel`` fragment for htmx (a poll, or the cancel button).

    A fragment of an ended job carries the navbar balance out of band: the
    settle (or release) of its credits changed it.
    """
    cls = registered_services().get(job.service.name)
    custom = cls is not None and cls.result_template != BaseService.result_template
    context = {
        "job": job,
        # The service's own result template when it has one, else keys and tables.
        "result_template": cls.result_template if cls is not None and custom else "",
        "display": result_display(job.result),
        "file_name": result_file_name(job),
        "notice": notice,
        "poll_seconds": _poll_seconds([job]),
        "oob_balance": wants_fragment(request) and job.is_finished,
    }
    return render(request, "services/job.html", context, partial="job-panel", status=status)


@never_cache
@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    """List the user's jobs, newest first, a page at a time; polls while one of them runs."""
    page = capped_page(selectors.jobs(_user(request)), page=page_number(request.GET.get("page")))
    active = [job for job in page.rows if not job.is_finished]
    context = {"page": page, "polling": bool(active), "poll_seconds": _poll_seconds(active)}
    return render(request, "services/jobs.html", context, partial="jobs-table")


@never_cache
@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    """Show one of the user's jobs: state, progress, and its result once it has ended."""
    return _job_page(request, _own_job(request, job_id))


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    """Cancel one of the user's jobs: a queued one at once, a running one at its next report.

    Another user's job is a 404; a job that has already ended is a 409 showing it as it ended.
    """
    user = _user(request)
    try:
        job = jobs.cancel_job(user, job_id)
    except JobNotFound:
        raise Http404("No such job.") from None
    except JobAlreadyFinished as error:
        return _job_page(request, _own_job(request, job_id), notice=str(error), status=409)
    if job.state == Job.State.CANCELLED:
        notice = "The job was cancelled before it started; nothing was charged."
    else:
        notice = "Cancelling: the job stops at its next progress report."
    if wants_fragment(request):
        return _job_page(request, job, notice=notice)
    messages.info(request, notice)
    return _go_to(request, reverse("services:job", args=[job.pk]))


@login_required
@require_GET
def job_download(request: HttpRequest, job_id: uuid.UUID) -> HttpResponseBase:
    """Send the result file of one of the user's jobs, as an attachment; 404 when it has none."""
    response = result_file_response(_own_job(request, job_id))
    if response is None:
        raise Http404("This job has no file to download.")
    return response
