"""Chat pages: conversations listed, renamed and deleted by their owner only; messages sent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from chat import services
from chat.models import Conversation, Message
from credits import ledger
from credits.models import CreditHold
from users.tests.factories import make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def signed_in(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def conversation(member):
    return services.conversation_create(member, title="Trip planning")


@pytest.fixture
def strangers_conversation(db):
    return services.conversation_create(make_user(), title="Not yours")


def test_the_list_shows_only_the_users_conversations(
    signed_in, chat, conversation, strangers_conversation
):
    page = signed_in.get(reverse("chat:list")).content.decode()
    assert "Trip planning" in page
    assert "Not yours" not in page


def test_new_starts_a_conversation_and_opens_it(signed_in, chat, member):
    response = signed_in.post(reverse("chat:new"))
    conversation = Conversation.objects.get(user=member)
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:detail", args=[conversation.pk])


def test_rename_changes_the_title(signed_in, chat, conversation):
    signed_in.post(reverse("chat:rename", args=[conversation.pk]), {"title": "  Rome in May "})
    conversation.refresh_from_db()
    assert conversation.title == "Rome in May"


def test_delete_removes_the_conversation_and_its_messages(signed_in, chat, conversation):
    services.message_send(conversation, text="Hello")
    response = signed_in.post(reverse("chat:delete", args=[conversation.pk]))
    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("name", "method", "data"),
    [
        ("chat:detail", "get", None),
        ("chat:detail", "post", {"text": "Hello"}),
        ("chat:rename", "post", {"title": "Mine now"}),
        ("chat:delete", "post", None),
    ],
)
def test_another_users_conversation_is_not_found_and_unchanged(
    signed_in, chat, strangers_conversation, name, method, data
):
    url = reverse(name, args=[strangers_conversation.pk])
    response = getattr(signed_in, method)(url, data or {})
    assert response.status_code == 404
    strangers_conversation.refresh_from_db()
    assert strangers_conversation.title == "Not yours"
    assert not Message.objects.exists()


def test_another_users_reply_stream_is_not_found(signed_in, chat, strangers_conversation):
    _, reply = services.message_send(strangers_conversation, text="Hi")
    response = signed_in.get(reverse("chat:reply_stream", args=[reply.pk]))
    assert response.status_code == 404
    reply.refresh_from_db()
    assert reply.state == Message.State.PENDING


def test_an_htmx_send_answers_both_turns_and_the_reply_connects_to_its_stream(
    signed_in, chat, conversation, fake_llm
):
    response = signed_in.post(
        reverse("chat:detail", args=[conversation.pk]), {"text": "Where to eat?"}, **HTMX
    )
    page = response.content.decode()
    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert response.status_code == 200
    assert "Where to eat?" in page
    assert f'sse-connect="{reverse("chat:reply_stream", args=[reply.pk])}"' in page
    assert 'hx-swap-oob="true"' in page  # a fresh, empty form
    assert reply.state == Message.State.PENDING
    assert fake_llm.requests == []  # the model is asked when the stream is read
    conversation.refresh_from_db()
    assert conversation.title == "Trip planning"


def test_without_javascript_a_send_waits_for_the_reply_and_shows_it(
    signed_in, chat, member, fake_llm
):
    conversation = services.conversation_create(member)
    fake_llm.reply("Try the trattoria on the corner.", input_tokens=30, output_tokens=8)

    response = signed_in.post(
        reverse("chat:detail", args=[conversation.pk]), {"text": "Where to eat?"}
    )

    assert response.status_code == 303
    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.state == Message.State.COMPLETE
    assert reply.content == "Try the trattoria on the corner."
    assert reply.credits_charged == Decimal("0.05")  # 30 x 1/1000 + 8 x 2/1000, rounded up
    assert ledger.balance(member).available == Decimal("99.95")
    page = signed_in.get(response["Location"]).content.decode()
    assert "Try the trattoria on the corner." in page
    assert "Charged 0.05 credits" in page
    conversation.refresh_from_db()
    assert conversation.title == "Where to eat?"  # a new conversation takes its first message


def test_the_second_message_sends_the_earlier_turns_as_context(
    signed_in, chat, conversation, fake_llm
):
    url = reverse("chat:detail", args=[conversation.pk])
    fake_llm.reply("Rome.")
    signed_in.post(url, {"text": "Pick a city."})
    fake_llm.reply("The Pantheon.")
    signed_in.post(url, {"text": "What to see there?"})

    sent = fake_llm.requests[1].body["messages"]
    assert [(m["role"], m["content"]) for m in sent if m["role"] != "system"] == [
        ("user", "Pick a city."),
        ("assistant", "Rome."),
        ("user", "What to see there?"),
    ]


def test_a_message_over_the_services_input_limit_is_refused_and_nothing_is_stored(
    signed_in, chat, conversation, fake_llm
):
    chat.max_input_chars = 20
    chat.save()
    response = signed_in.post(
        reverse("chat:detail", args=[conversation.pk]), {"text": "x" * 21}, **HTMX
    )
    assert "at most 20 characters" in response.content.decode()
    assert response["HX-Retarget"] == "#chat-composer"
    assert not Message.objects.exists()
    assert fake_llm.requests == []


def test_a_balance_that_cannot_cover_the_reply_is_refused_before_anything_is_held(
    client, chat, fake_llm
):
    poor = make_user()
    ledger.grant(poor, Decimal("0.01"), source="admin", reference="poor")
    client.force_login(poor)
    conversation = services.conversation_create(poor)
    response = client.post(reverse("chat:detail", args=[conversation.pk]), {"text": "Hello"})
    assert response.status_code == 422
    assert "Insufficient credits" in response.content.decode()
    assert not Message.objects.exists()
    assert not CreditHold.objects.exists()
    assert fake_llm.requests == []


def test_an_unconfigured_provider_says_which_variable_to_set_and_refuses(
    signed_in, chat, conversation, settings
):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    page = signed_in.get(reverse("chat:detail", args=[conversation.pk])).content.decode()
    assert "OPENAI_API_KEY" in page
    response = signed_in.post(reverse("chat:detail", args=[conversation.pk]), {"text": "Hi"})
    assert response.status_code == 422
    assert "OPENAI_API_KEY" in response.content.decode()
    assert not Message.objects.exists()


def test_a_reply_still_streaming_blocks_the_next_message(signed_in, chat, conversation):
    _, reply = services.message_send(conversation, text="First")
    assert services.reply_claim(reply.pk)
    response = signed_in.post(reverse("chat:detail", args=[conversation.pk]), {"text": "Second"})
    assert response.status_code == 422
    assert "still being written" in response.content.decode()
    assert Message.objects.count() == 2
