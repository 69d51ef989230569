"""The chat's forms: a message to send, a conversation's new title."""

from __future__ import annotations

from typing import Any

from django import forms

from chat.models import TITLE_MAX_LENGTH


class MessageForm(forms.Form):
    """One message, at most ``max_chars`` characters (the service's ``max_input_chars``)."""

    def __init__(self, *args: Any, max_chars: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["text"] = forms.CharField(
            label="Message",
            max_length=max_chars,
            widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Ask anything…"}),
        )


class RenameForm(forms.Form):
    title = forms.CharField(label="Title", max_length=TITLE_MAX_LENGTH)
