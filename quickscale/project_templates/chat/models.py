"""Conversations and their messages.

A ``Conversation`` belongs to one user, who lists, renames and deletes it; its
``Message`` rows are the turns, oldest first. A reply is written as an
assistant message before the model is asked (state *pending*), becomes
*streaming* when a stream takes it (the conditional update that makes this
change is what stops a reconnecting browser from asking twice), and ends
*complete*, *stopped* (the client went away: what arrived is kept and was
charged) or *failed* (nothing charged). What a reply cost is on the message,
from the settled credit hold.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

TITLE_MAX_LENGTH = 120


class Conversation(models.Model):
    """One user's chat: a title and its messages."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["user", "-updated_at"], name="conversation_user_recent")]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    """One turn of a conversation: the user's text or the model's reply."""

    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class State(models.TextChoices):
        COMPLETE = "complete", "Complete"
        PENDING = "pending", "Waiting for the model"
        STREAMING = "streaming", "Streaming"
        STOPPED = "stopped", "Stopped (the client left)"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.COMPLETE)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    credits_charged = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def is_open(self) -> bool:
        """Whether the reply has not ended yet (pending or streaming)."""
        return self.state in (self.State.PENDING, self.State.STREAMING)
