"""Reads of conversations, always through their owner: another user's is None, as a missing one."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from chat.models import Conversation, Message
from users.models import CustomUser


def conversation_list(user: CustomUser) -> QuerySet[Conversation]:
    """The user's conversations, most recently active first, with their message counts."""
    return Conversation.objects.filter(user=user).annotate(message_count=Count("messages"))


def user_conversation(user: CustomUser, conversation_id: int) -> Conversation | None:
    return Conversation.objects.filter(user=user, pk=conversation_id).first()


def conversation_messages(conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.all()


def user_reply(user: CustomUser, message_id: int) -> Message | None:
    """One of the user's assistant messages (a reply), with its conversation."""
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__user=user)
        .first()
    )
