"""The chat service through the API without ``stream``, and its service page: one metered path.

In core/tests because it crosses apps the layers keep apart (api and chat).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from api.services import api_key_create
from chat.models import Conversation, Message
from credits import ledger
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

RUN = "/api/services/chat/run"


@pytest.fixture
def auth(member):
    _, token = api_key_create(member, name="chat tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def run(client: Any, auth: dict[str, str], **inputs: Any) -> Any:
    """POST ``inputs`` to the chat's run endpoint with the key in ``auth``."""
    body = json.dumps({"input": inputs})
    return client.post(RUN, body, content_type="application/json", **auth)


def test_a_message_gets_the_whole_reply_and_the_next_one_continues_the_conversation(
    client, auth, chat, member, fake_llm
):
    fake_llm.reply("Rome.", input_tokens=20, output_tokens=2)
    first = run(client, auth, message="Pick a city.").json()["data"]
    assert first["result"]["reply"] == "Rome."
    assert first["result"]["credits_charged"] == first["credits_charged"] == "0.03"
    conversation = first["result"]["conversation"]

    fake_llm.reply("The Pantheon.")
    second = run(client, auth, message="What to see?", conversation=conversation).json()
    assert second["data"]["result"]["conversation"] == conversation
    sent = fake_llm.requests[1].body["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [
        "Pick a city.",
        "Rome.",
        "What to see?",
    ]
    assert Message.objects.filter(conversation_id=conversation).count() == 4


@pytest.mark.parametrize("max_tokens", [0, -5, 10_000])
def test_max_tokens_outside_one_to_the_cap_is_refused_before_anything_is_held(
    client, auth, chat, member, fake_llm, max_tokens
):
    response = run(client, auth, message="Hi", max_tokens=max_tokens)
    assert response.status_code == 422
    assert "max_tokens" in response.json()["error"]["details"]["fields"]
    assert fake_llm.requests == []
    assert not Conversation.objects.exists()
    assert ledger.balance(member).available == Decimal(100)


def test_another_users_conversation_is_refused_and_left_alone(client, auth, chat, member, fake_llm):
    theirs = Conversation.objects.create(user=make_user(), title="Theirs")
    response = run(client, auth, message="Hi", conversation=theirs.pk)
    assert response.status_code == 422
    assert "No such conversation" in response.json()["error"]["message"]
    assert not Message.objects.exists()
    assert fake_llm.requests == []


def test_an_unknown_model_is_a_502_and_charges_nothing(client, auth, chat, member, fake_llm):
    chat.model = "no-such-model"
    chat.save()
    response = run(client, auth, message="Hi")
    assert response.status_code == 502
    assert ledger.balance(member).available == Decimal(100)
    assert Message.objects.get(role=Message.Role.ASSISTANT).state == Message.State.FAILED


def test_the_service_page_sends_one_message_in_a_new_conversation(client, chat, member, fake_llm):
    client.force_login(member)
    fake_llm.reply("Hello there.")
    response = client.post(reverse("services:detail", args=["chat"]), {"message": "Hello"})
    assert response.status_code == 200
    assert "Hello there." in response.content.decode()
    assert Conversation.objects.get(user=member).title == "Hello"
