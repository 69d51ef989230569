"""The chat's calls to its model: whether it can answer, and one reply, streamed or not.

A message is checked before anything is stored (``check_message``: the service
is on and configured, the message fits the service's input limit and the
context budget, the balance covers the reply's most possible cost). Its reply
is opened only once a reader starts reading it (``open_reply``: claim the
pending reply, build its bounded context, hold its most possible cost, write
its pending ``ServiceUsage``) and then streamed by ``llm.streaming``, which
settles the hold to the usage and records the reply. ``reply_events`` is that
stream for a reader (the page's SSE); ``reply_to_end`` runs the same path with
nobody reading, for a browser without JavaScript: one metered path, whatever
the client reads.

The API stores nothing before its reply starts: ``open_message`` writes the
message, its reply (already claimed), the hold and the pending usage in one
transaction (one commit between the request and the provider call), when the
response starts (``"stream": true``) or at once (without it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction

from chat import services
from chat.context import MessageTooLong, bounded_context
from chat.models import Conversation, Message
from credits import ledger
from credits.exceptions import InsufficientCredits
from llm import metering
from llm.models import LLMServiceConfig
from llm.providers import ChatMessage, LLMRequest, TextDelta
from llm.service import LLMService
from llm.streaming import (
    StreamCall,
    StreamOutcome,
    StreamRefused,
    metered_stream,
    opened_stream,
)
from services.exceptions import ServiceInputError, ServiceNotConfigured, ServiceUnavailable
from services.registry import create_service_instance
from services.usage import UsageHook, usage_start
from users.models import CustomUser

logger = logging.getLogger(__name__)

CHAT_SERVICE = "chat"
DEFAULT_MAX_CHARS = 8000  # shown while the service has no configuration to say
REPLY_TAKEN = "This reply is already being written elsewhere."
CONVERSATION_GONE = "The conversation was deleted. Leave it out to start a new one."


class ReplyTaken(Exception):
    """The reply was claimed by another stream, or has ended."""

    def __init__(self) -> None:
        super().__init__(REPLY_TAKEN)


@dataclass(frozen=True)
class ChatAvailability:
    """Whether the chat can answer now, what it costs, and the longest message it takes."""

    active: bool
    problem: str = ""  # what the operator must set up ("" when nothing)
    input_price: Decimal = Decimal("0")
    output_price: Decimal = Decimal("0")
    max_chars: int = DEFAULT_MAX_CHARS

    @property
    def ready(self) -> bool:
        return self.active and not self.problem


def chat_service() -> LLMService:
    """The chat service with its active row read, or ``ServiceUnavailable``."""
    service = create_service_instance(CHAT_SERVICE)
    assert isinstance(service, LLMService)
    service.configuration()
    return service


def chat_availability() -> ChatAvailability:
    try:
        service = chat_service()
    except ServiceUnavailable:
        return ChatAvailability(active=False)
    config = service.llm_config()
    return ChatAvailability(
        active=True,
        problem=service.setup_problem(),
        input_price=config.input_price_per_1k,
        output_price=config.output_price_per_1k,
        max_chars=config.max_input_chars,
    )


def context_budget(config: LLMServiceConfig, max_tokens: int) -> int:
    """Tokens a reply may read: CHAT_CONTEXT_TOKEN_BUDGET, and never more than the model's
    window leaves beside the reply."""
    return min(int(settings.CHAT_CONTEXT_TOKEN_BUDGET), config.context_window - max_tokens)


def history_before(conversation_id: int, *, before_id: int | None = None) -> list[ChatMessage]:
    """The turns of a conversation (before message ``before_id``), oldest first.

    Failed and empty replies are left out: the model never said them.
    """
    turns = Message.objects.filter(conversation_id=conversation_id)
    if before_id is not None:
        turns = turns.filter(pk__lt=before_id)
    rows = (
        turns.exclude(role=Message.Role.ASSISTANT, state=Message.State.FAILED)
        .exclude(content="")
        .values_list("role", "content")
    )
    return [
        ChatMessage(role="user" if role == Message.Role.USER else "assistant", content=content)
        for role, content in rows
    ]


def build_request(
    config: LLMServiceConfig, history: list[ChatMessage], *, max_tokens: int | None = None
) -> LLMRequest:
    """The request answering ``history``'s last message; ``MessageTooLong`` if it cannot fit."""
    tokens = max_tokens or config.max_tokens
    system = config.system_prompt or None
    messages = bounded_context(history, budget=context_budget(config, tokens), system=system)
    return LLMRequest(
        messages=messages,
        model=config.model,
        max_tokens=tokens,
        temperature=float(config.temperature),
        system=system,
    )


def check_message(
    user: CustomUser,
    conversation: Conversation,
    text: str,
    *,
    max_tokens: int | None = None,
    service: LLMService | None = None,
) -> None:
    """Refuse a message before anything is stored or held, as its reply would be refused.

    Raises ``ServiceUnavailable``, ``ServiceNotConfigured``, ``ServiceInputError``
    (too long for the service or for the context budget) or ``InsufficientCredits``
    (the balance cannot cover the reply's most possible cost; the hold checks again).
    """
    service = service or chat_service()
    service.provider()
    config = service.llm_config()
    if len(text) > config.max_input_chars:
        raise ServiceInputError.for_field(
            "message", f"The message is too long: send at most {config.max_input_chars} characters."
        )
    earlier = history_before(conversation.pk) if conversation.pk is not None else []
    history = [*earlier, ChatMessage(role="user", content=text)]
    try:
        request = build_request(config, history, max_tokens=max_tokens)
    except MessageTooLong as error:
        raise ServiceInputError.for_field("message", str(error)) from None
    if metering.charges(config):
        cost = metering.max_cost(config, request)
        available = ledger.balance(user).available
        if available < cost:
            raise InsufficientCredits(required=cost, available=available)


def open_reply(
    user: CustomUser,
    reply: Message,
    *,
    origin: str,
    max_tokens: int | None = None,
    on_usage_created: UsageHook | None = None,
    service: LLMService | None = None,
) -> StreamCall:
    """Claim the pending reply, hold its most possible cost and write its pending usage.

    The provider is not asked yet. Raises ``ReplyTaken``, ``ServiceUnavailable``,
    ``ServiceNotConfigured``, ``MessageTooLong`` or ``InsufficientCredits``; for
    all but the first the reply is marked failed (nothing held, nothing charged).
    """
    reply_id = reply.pk
    try:
        service = service or chat_service()
        row = service.configuration()
        provider = service.provider()
        config = service.llm_config()
        # One transaction (one commit): the claim, the hold and the usage row.
        with transaction.atomic():
            if not services.reply_claim(reply_id):
                raise ReplyTaken
            history = history_before(reply.conversation_id, before_id=reply_id)
            request = build_request(config, history, max_tokens=max_tokens)
            key = metering.open_hold(user, row.name, config, request)
            usage, _ = usage_start(
                user,
                row,
                origin=origin,
                summary=f"message: {len(history[-1].content) if history else 0} chars",
                charge=False,
                on_created=on_usage_created,
                savepoint=False,  # any error rolls this whole transaction back
            )
    except ReplyTaken:
        raise
    except Exception as error:
        services.reply_fail(reply_id, str(error))
        raise
    return StreamCall(
        provider=provider,
        request=request,
        config=config,
        hold_key=key,
        usage=usage,
        record=partial(services.reply_record, reply_id, reply.conversation_id),
    )


def open_message(
    user: CustomUser,
    conversation: Conversation,
    text: str,
    *,
    origin: str,
    max_tokens: int | None = None,
    on_usage_created: UsageHook | None = None,
    service: LLMService,
) -> StreamCall:
    """Store the message and its reply, hold the reply's most possible cost and write its
    pending usage: what must exist before the provider is asked, in one transaction.

    ``conversation`` is unsaved for a new one (created here). The message was checked
    (``check_message``); the hold checks the balance again under its locks. Raises
    ``services.ReplyInProgress``, ``MessageTooLong``, ``InsufficientCredits`` or
    ``Conversation.DoesNotExist`` (deleted meanwhile), and stores nothing then.
    """
    row = service.configuration()
    provider = service.provider()
    config = service.llm_config()
    with transaction.atomic():
        new = conversation.pk is None
        if new:
            # Titled from the message at once: one UPDATE fewer in this transaction.
            conversation = services.conversation_create(user, title=text)
        # No savepoints inside: any error rolls this whole transaction back.
        _, reply = services.message_send(
            conversation, text=text, new=new, streaming=True, savepoint=False
        )
        history = (
            [ChatMessage(role="user", content=text)]
            if new
            else history_before(conversation.pk, before_id=reply.pk)
        )
        request = build_request(config, history, max_tokens=max_tokens)
        key = metering.open_hold(user, row.name, config, request)
        usage, _ = usage_start(
            user,
            row,
            origin=origin,
            summary=f"message: {len(text)} chars",
            charge=False,
            on_created=on_usage_created,
            savepoint=False,
        )
    return StreamCall(
        provider=provider,
        request=request,
        config=config,
        hold_key=key,
        usage=usage,
        record=partial(services.reply_record, reply.pk, conversation.pk),
    )


def refusal(error: Exception) -> StreamRefused | None:
    """What a reader is told when ``open_reply`` or ``open_message`` refuses (None: not a
    refusal, it propagates)."""
    if isinstance(error, InsufficientCredits):
        return StreamRefused("insufficient_credits", 402, str(error))
    if isinstance(error, ServiceNotConfigured):
        return StreamRefused("not_configured", 503, error.message)
    if isinstance(error, MessageTooLong):
        return StreamRefused("validation_error", 422, str(error))
    if isinstance(error, ServiceUnavailable):
        return StreamRefused("service_unavailable", 404, str(error))
    if isinstance(error, ReplyTaken):
        return StreamRefused("reply_taken", 409, str(error))
    if isinstance(error, services.ReplyInProgress):
        return StreamRefused("validation_error", 422, str(error))
    if isinstance(error, Conversation.DoesNotExist):
        return StreamRefused("validation_error", 422, CONVERSATION_GONE)
    return None


def reply_events(
    user: CustomUser,
    reply: Message,
    *,
    origin: str,
    max_tokens: int | None = None,
    on_usage_created: UsageHook | None = None,
    service: LLMService | None = None,
) -> AsyncIterator[TextDelta | StreamOutcome | StreamRefused]:
    """The reply's stream: its text as it arrives, then its outcome (or a refusal)."""
    opener = partial(
        open_reply,
        user,
        reply,
        origin=origin,
        max_tokens=max_tokens,
        on_usage_created=on_usage_created,
        service=service,
    )
    return opened_stream(opener, refusal)


async def reply_to_end(user: CustomUser, reply: Message, *, origin: str) -> StreamOutcome | None:
    """Run the reply to its end with nobody reading; None when it was refused (see its state)."""
    last: StreamOutcome | None = None
    async for event in reply_events(user, reply, origin=origin):
        if isinstance(event, StreamOutcome):
            last = event
    return last


async def stream_to_end(call: StreamCall) -> StreamOutcome:
    """Run an opened call to its end with nobody reading; return how it ended."""
    last: StreamOutcome | None = None
    async for event in metered_stream(call):
        if isinstance(event, StreamOutcome):
            last = event
    assert last is not None, "a metered stream always ends with its outcome"
    return last
