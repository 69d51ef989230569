"""The ``chat`` service: one message of a conversation, answered by the model, per call.

Inputs: ``message`` (the text), ``conversation`` (optional: the id of one of
the caller's conversations; without it a new one is started) and
``max_tokens`` (optional, 1 to the service's cap). The reply is priced per
token like every LLM service (``llm.service``) but sent with the
conversation's newest turns that fit the context budget (``chat.context``),
and both turns are stored. ``"stream": true`` in the API streams it
(``start_stream``); without it, ``run`` waits for the whole reply. Both go
through the same metered stream (``chat.calls``), and both write the message,
its reply, the hold and the pending usage in one transaction just before the
provider is asked (``calls.open_message``).
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from asgiref.sync import async_to_sync
from django import forms

from chat import calls, selectors, services
from chat.context import MessageTooLong
from chat.models import Conversation
from llm.providers import ProviderError
from llm.service import LLMDefaults, LLMService
from llm.streaming import StreamStart, opened_stream
from services.base import ServiceResult
from services.exceptions import ServiceFailed, ServiceInputError
from services.models import ServiceUsage
from services.registry import register_service
from services.usage import UsageHook
from services.validation import clean_int, clean_text, only_fields
from users.models import CustomUser

CONVERSATION_FIELD = "conversation"
NO_SUCH_CONVERSATION = "No such conversation. Leave it out to start a new one."


class ChatServiceForm(forms.Form):
    """The service page's form: one message, in a new conversation."""

    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False)


@register_service("chat")
class ChatService(LLMService):
    """Multi-turn chat: the conversation's newest turns within a token budget, per-token credits."""

    description = (
        "Chat with a language model: conversations are kept, replies stream as they are "
        "written, and you pay for the tokens read and written."
    )
    llm_defaults: ClassVar[LLMDefaults] = LLMDefaults(
        max_tokens=1024,
        system_prompt="You are a helpful assistant. Answer clearly and concisely.",
    )
    input_fields: ClassVar[tuple[str, ...]] = ("message",)
    form_class: ClassVar[type[forms.Form]] = ChatServiceForm

    def validate_input(self, **inputs: Any) -> dict[str, Any]:
        config = self.llm_config()
        only_fields(inputs, {"message", CONVERSATION_FIELD, "max_tokens"})
        conversation = inputs.get(CONVERSATION_FIELD)
        if conversation is not None and (
            isinstance(conversation, bool) or not isinstance(conversation, int) or conversation < 1
        ):
            raise ServiceInputError.for_field(
                CONVERSATION_FIELD, "Send a conversation id (a positive whole number)."
            )
        return {
            "message": clean_text(
                inputs.get("message"), field="message", max_chars=config.max_input_chars
            ),
            CONVERSATION_FIELD: conversation,
            "max_tokens": clean_int(
                inputs.get("max_tokens"),
                field="max_tokens",
                default=config.max_tokens,
                low=1,
                high=config.max_tokens_cap,
            ),
        }

    def _checked(self, user: CustomUser, inputs: dict[str, Any]) -> tuple[Conversation, str, int]:
        """Check the message, storing nothing: its conversation (unsaved when new), its
        text and the reply's max_tokens. Refusals raise as a call without a stream would."""
        self.configuration()
        self.provider()
        cleaned = self.validate_input(**inputs)
        conversation = _conversation_of(user, cleaned[CONVERSATION_FIELD])
        if conversation.pk is not None and services.reply_in_progress(conversation.pk):
            raise ServiceInputError.for_field(CONVERSATION_FIELD, str(services.ReplyInProgress()))
        calls.check_message(
            user, conversation, cleaned["message"], max_tokens=cleaned["max_tokens"], service=self
        )
        return conversation, cleaned["message"], int(cleaned["max_tokens"])

    def run(
        self,
        user: CustomUser,
        *,
        origin: str = "web",
        on_usage_created: UsageHook | None = None,
        **inputs: Any,
    ) -> ServiceResult:
        """Send the message and wait for the whole reply (``ServiceFailed`` if the model failed)."""
        conversation, text, max_tokens = self._checked(user, inputs)
        try:
            call = calls.open_message(
                user,
                conversation,
                text,
                origin=origin,
                max_tokens=max_tokens,
                on_usage_created=on_usage_created,
                service=self,
            )
        except services.ReplyInProgress as busy:
            raise ServiceInputError.for_field(CONVERSATION_FIELD, str(busy)) from None
        except MessageTooLong as error:
            raise ServiceInputError.for_field("message", str(error)) from None
        except Conversation.DoesNotExist:
            raise ServiceInputError.for_field(CONVERSATION_FIELD, NO_SUCH_CONVERSATION) from None
        outcome = async_to_sync(calls.stream_to_end)(call)
        assert call.usage is not None
        usage = ServiceUsage.objects.get(pk=call.usage.pk)
        if outcome.ending == "failed":
            cause = ProviderError(outcome.provider_status, outcome.error)
            raise ServiceFailed(self.name, usage) from cause
        result = {
            "reply": outcome.text,
            "conversation": outcome.details.get("conversation"),
            "message": outcome.details.get("message"),
            "model": call.request.model,
            "finish_reason": outcome.finish_reason,
            "input_tokens": outcome.usage.input_tokens,
            "output_tokens": outcome.usage.output_tokens,
            "credits_charged": f"{outcome.credits_charged:.2f}",
        }
        return ServiceResult(result=result, usage=usage)

    def start_stream(
        self,
        user: CustomUser,
        *,
        origin: str,
        inputs: dict[str, Any],
        on_usage_created: UsageHook | None = None,
    ) -> StreamStart:
        """Check the message; storing it, the reply's hold and the provider call wait for
        the reader (``calls.open_message``: one transaction when the response starts)."""
        conversation, text, max_tokens = self._checked(user, inputs)
        opener = partial(
            calls.open_message,
            user,
            conversation,
            text,
            origin=origin,
            max_tokens=max_tokens,
            on_usage_created=on_usage_created,
            service=self,
        )
        return StreamStart(
            events=opened_stream(opener, calls.refusal), model=self.llm_config().model
        )


def _conversation_of(user: CustomUser, conversation_id: int | None) -> Conversation:
    """The user's conversation, or an unsaved new one; another user's is not found."""
    if conversation_id is None:
        return Conversation(user=user, title=services.DEFAULT_TITLE)
    conversation = selectors.user_conversation(user, conversation_id)
    if conversation is None:
        raise ServiceInputError.for_field(CONVERSATION_FIELD, NO_SUCH_CONVERSATION)
    return conversation
