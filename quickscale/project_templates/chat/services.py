"""Writes of conversations and messages (``<entity>_<action>``), each for its owner only.

Sending a message writes the user's turn and the reply's placeholder (state
*pending*) in one transaction, under the conversation's row lock, so two sends
at once never both start a reply. The stream then claims the reply
(``reply_claim``: pending to streaming, a conditional update, so a browser
that reconnects never asks the model twice) and records how it ended
(``reply_record``). Money is not here: holds and settles are ``llm.metering``'s.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from chat.models import TITLE_MAX_LENGTH, Conversation, Message
from llm.streaming import StreamOutcome
from users.models import CustomUser

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "New conversation"
ERROR_MAX_LENGTH = 300
NOT_STARTED = "Not answered: the page was left before the reply started. Nothing was charged."
STATE_OF_ENDING = {
    "complete": Message.State.COMPLETE,
    "stopped": Message.State.STOPPED,
    "failed": Message.State.FAILED,
}


class ReplyInProgress(Exception):
    """The conversation's last reply is still being written."""

    def __init__(self) -> None:
        super().__init__("The previous reply is still being written; wait for it to finish.")


def conversation_create(user: CustomUser, *, title: str = "") -> Conversation:
    return Conversation.objects.create(user=user, title=_title(title) or DEFAULT_TITLE)


def conversation_rename(
    user: CustomUser, *, conversation_id: int, title: str
) -> Conversation | None:
    """Rename one of the user's conversations; None when it is not theirs (or gone)."""
    conversation = Conversation.objects.filter(user=user, pk=conversation_id).first()
    if conversation is None:
        return None
    conversation.title = _title(title) or DEFAULT_TITLE
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(user: CustomUser, *, conversation_id: int) -> bool:
    """Delete one of the user's conversations and its messages; False when not theirs.

    A reply streaming meanwhile still settles its credits (the hold is the
    ledger's); only its text has nowhere to go.
    """
    deleted, _ = Conversation.objects.filter(user=user, pk=conversation_id).delete()
    return bool(deleted)


def reply_in_progress(conversation_id: int) -> bool:
    """Whether the conversation's last reply is still streaming (a read, no lock).

    A streamed API call checks this before it answers, so a busy conversation is
    refused with a plain error; ``message_send`` checks again under the lock.
    """
    return _streaming_replies(conversation_id).exists()


def _streaming_replies(conversation_id: int) -> QuerySet[Message]:
    # A reply streaming longer than any call can is a stream whose process died.
    stale_before = timezone.now() - timedelta(seconds=settings.SERVICE_CALL_TIMEOUT_SECONDS)
    return Message.objects.filter(
        conversation_id=conversation_id,
        role=Message.Role.ASSISTANT,
        state=Message.State.STREAMING,
        created_at__gte=stale_before,
    )


def message_send(
    conversation: Conversation,
    *,
    text: str,
    new: bool = False,
    streaming: bool = False,
    savepoint: bool = True,
) -> tuple[Message, Message]:
    """Add the user's ``text`` and a pending reply to ``conversation`` (locked meanwhile).

    Raises ``ReplyInProgress`` while the previous reply streams. A reply still
    pending (its stream never started) is marked failed, uncharged, first.
    ``new``: the conversation was created in this transaction (it has no turns).
    ``streaming``: the caller streams the reply at once (in this transaction it holds
    its credits), so it starts *streaming*, already claimed, not *pending*.
    ``savepoint=False``: the caller's own transaction, rolled back whole on any error
    here, needs no savepoint (two statements fewer).
    """
    with transaction.atomic(savepoint=savepoint):
        return _message_send(conversation, text=text, new=new, streaming=streaming)


def _message_send(
    conversation: Conversation, *, text: str, new: bool, streaming: bool
) -> tuple[Message, Message]:
    state = Message.State.STREAMING if streaming else Message.State.PENDING
    if new:
        question, reply = _turns(conversation, text, state)
        if conversation.title != _title(text):
            conversation.title = _title(text)
            conversation.save(update_fields=["title", "updated_at"])
        return question, reply
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    open_replies = locked.messages.filter(
        role=Message.Role.ASSISTANT, state__in=[Message.State.PENDING, Message.State.STREAMING]
    )
    if _streaming_replies(locked.pk).exists():
        raise ReplyInProgress
    open_replies.update(state=Message.State.FAILED, error=NOT_STARTED)
    question, reply = _turns(locked, text, state)
    if locked.title == DEFAULT_TITLE and not locked.messages.filter(pk__lt=question.pk).exists():
        locked.title = _title(text)
    locked.save(update_fields=["title", "updated_at"])
    conversation.title = locked.title
    return question, reply


def _turns(conversation: Conversation, text: str, state: str) -> tuple[Message, Message]:
    """The user's turn and its reply, in one INSERT (ids in this order: the history's)."""
    question = Message(conversation=conversation, role=Message.Role.USER, content=text)
    reply = Message(conversation=conversation, role=Message.Role.ASSISTANT, state=state)
    Message.objects.bulk_create([question, reply])
    return question, reply


def reply_claim(reply_id: int) -> bool:
    """Mark a pending reply as streaming; False when another stream took it or it ended."""
    return bool(
        Message.objects.filter(pk=reply_id, state=Message.State.PENDING).update(
            state=Message.State.STREAMING
        )
    )


def reply_fail(reply_id: int, error: str) -> None:
    """A reply that could not start (refused before the model was asked): nothing charged."""
    Message.objects.filter(pk=reply_id).update(
        state=Message.State.FAILED, error=error[:ERROR_MAX_LENGTH]
    )


def reply_record(reply_id: int, conversation_id: int, outcome: StreamOutcome) -> dict[str, Any]:
    """Store how a reply's stream ended: its text, tokens and charge (or its error)."""
    updated = Message.objects.filter(pk=reply_id).update(
        state=STATE_OF_ENDING[outcome.ending],
        content=outcome.text,
        input_tokens=outcome.usage.input_tokens,
        output_tokens=outcome.usage.output_tokens,
        credits_charged=outcome.credits_charged,
        error=outcome.error[:ERROR_MAX_LENGTH],
    )
    if not updated:
        logger.info("reply ended after its conversation was deleted", extra={"reply": reply_id})
    return {"conversation": conversation_id, "message": reply_id}


def _title(text: str) -> str:
    """A title from free text: one line, at most TITLE_MAX_LENGTH characters."""
    line = " ".join(text.split())
    if len(line) <= TITLE_MAX_LENGTH:
        return line
    return line[: TITLE_MAX_LENGTH - 1].rstrip() + "…"
