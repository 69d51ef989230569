"""Chat pages: the conversation list, one conversation, rename, delete, and the reply stream.

Sending a message (``conversation_detail`` POST) stores it with a pending reply.
htmx gets back the two new turns, the reply's turn connecting to
``reply_stream`` through htmx's SSE extension: the reply's tokens arrive as
``token`` events appended as they come, and an ``end`` event brings what it
cost (and the navbar balance, out of band) or what went wrong, and closes the
stream. Without JavaScript the same POST waits for the whole reply and sends
the browser back to the conversation (303).

``reply_stream`` is an async view: its response is an async generator, which
Django under ASGI sends event by event (a synchronous iterator it would read
to the end first). The reply is claimed, its context built and its credits
held only once the response starts (``llm.streaming.opened_stream``), so a
browser that left at once costs nothing and leaves the reply pending.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, retarget

from chat import calls, selectors, services
from chat.forms import MessageForm, RenameForm
from chat.models import Conversation, Message
from common.htmx import wants_fragment
from credits.exceptions import InsufficientCredits
from llm.providers import TextDelta
from llm.streaming import StreamOutcome, StreamRefused, release_connection
from services.exceptions import ServiceInputError, ServiceNotConfigured, ServiceUnavailable
from users.models import CustomUser


def _user(request: HttpRequest) -> CustomUser:
    user = request.user
    if not isinstance(user, CustomUser):  # login_required ran first
        raise Http404
    return user


def _conversation(request: HttpRequest, conversation_id: int) -> Conversation:
    conversation = selectors.user_conversation(_user(request), conversation_id)
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


@never_cache
@login_required
@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    """The user's conversations, most recent first, and a button to start one."""
    context = {
        "conversations": selectors.conversation_list(_user(request)),
        "availability": calls.chat_availability(),
    }
    return TemplateResponse(request, "chat/list.html", context)


@login_required
@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    conversation = services.conversation_create(_user(request))
    return redirect("chat:detail", conversation.pk)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def conversation_detail(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """One conversation; a POST sends a message (see the module docstring)."""
    conversation = _conversation(request, conversation_id)
    availability = calls.chat_availability()
    form = MessageForm(request.POST or None, max_chars=availability.max_chars)
    error = ""
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["text"]
        try:
            calls.check_message(_user(request), conversation, text)
            question, reply = services.message_send(conversation, text=text)
        except ServiceInputError as refused:
            form.add_error("text", refused.message)
        except (
            services.ReplyInProgress,
            InsufficientCredits,
            ServiceNotConfigured,
            ServiceUnavailable,
        ) as refused:
            error = str(refused)
        else:
            if wants_fragment(request):
                turns = {
                    "conversation": conversation,
                    "turns": [question, reply],
                    "form": MessageForm(max_chars=availability.max_chars),
                }
                return TemplateResponse(request, "chat/detail.html#new-turns", turns)
            # Without JavaScript: wait for the whole reply, then show the conversation.
            async_to_sync(calls.reply_to_end)(_user(request), reply, origin="web")
            return HttpResponseRedirect(reverse("chat:detail", args=[conversation.pk]), status=303)
    context: dict[str, Any] = {
        "conversation": conversation,
        "turns": selectors.conversation_messages(conversation),
        "form": form,
        "error": error,
        "rename_form": RenameForm(initial={"title": conversation.title}),
        "availability": availability,
    }
    if request.method == "POST" and wants_fragment(request):
        # A refused message: show the composer again, with its errors, in place.
        response = TemplateResponse(request, "chat/detail.html#composer", context)
        return retarget(response, "#chat-composer")
    status = 200 if request.method == "GET" else 422
    return TemplateResponse(request, "chat/detail.html", context, status=status)


@login_required
@require_POST
def conversation_rename(request: HttpRequest, conversation_id: int) -> HttpResponse:
    form = RenameForm(request.POST)
    conversation = _conversation(request, conversation_id)
    if form.is_valid():
        services.conversation_rename(
            _user(request), conversation_id=conversation.pk, title=form.cleaned_data["title"]
        )
    return redirect("chat:detail", conversation.pk)


@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id: int) -> HttpResponse:
    if not services.conversation_delete(_user(request), conversation_id=conversation_id):
        raise Http404("No such conversation.")
    if wants_fragment(request):
        return HttpResponseClientRedirect(reverse("chat:list"))
    return redirect("chat:list")


@login_required
async def reply_stream(request: HttpRequest, message_id: int) -> StreamingHttpResponse:
    """The reply ``message_id`` as server-sent events (``token``..., then ``end``)."""
    user = await request.auser()
    if not isinstance(user, CustomUser):
        raise Http404
    reply = await sync_to_async(_reply_of)(user, message_id)
    if reply is None:
        raise Http404("No such reply.")
    response = StreamingHttpResponse(
        _reply_events(request, user, reply), content_type="text/event-stream"
    )
    # Never stored, never buffered by a proxy (nginx honours X-Accel-Buffering).
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"
    return response


def _reply_of(user: CustomUser, message_id: int) -> Message | None:
    try:
        return selectors.user_reply(user, message_id)
    finally:
        release_connection()  # the stream opens its own when it needs one


async def _reply_events(
    request: HttpRequest, user: CustomUser, reply: Message
) -> AsyncIterator[bytes]:
    if reply.state != Message.State.PENDING:
        # A browser reconnecting, or a page showing a reply another tab streams.
        yield _event("token", escape(reply.content))
        yield _event("end", await _end_html(request, reply=reply))
        return
    async for event in calls.reply_events(user, reply, origin="web"):
        if isinstance(event, TextDelta):
            yield _event("token", escape(event.text))
        elif isinstance(event, StreamOutcome):
            yield _event("end", await _end_html(request, outcome=event))
        elif isinstance(event, StreamRefused):
            yield _event("end", await _end_html(request, refused=event))


async def _end_html(request: HttpRequest, **context: Any) -> str:
    html: str = await sync_to_async(render_to_string)("chat/_reply_end.html", context, request)
    return html


def _event(name: str, data: str) -> bytes:
    """One server-sent event; each line of ``data`` is a ``data:`` line."""
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: {name}\n{lines}\n".encode()
