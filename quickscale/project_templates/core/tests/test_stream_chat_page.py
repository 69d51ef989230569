"""The page's reply stream (server-sent events for htmx's SSE extension), through the ASGI stack."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from chat import services
from chat.models import Message
from common.testing.streams import StreamRead, read_stream_blocking, sse_events
from credits import ledger
from credits.models import CreditHold

pytestmark = pytest.mark.django_db(transaction=True)  # the view runs in another thread

PIECES = ["Fish ", "& ", "chips", "\n", "<b>not bold</b>"]


@pytest.fixture
def cookie(member):
    client = Client()
    client.force_login(member)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())


@pytest.fixture
def reply(member, chat):
    conversation = services.conversation_create(member)
    _, pending = services.message_send(conversation, text="Lunch?")
    return pending


def read(application, cookie, reply, **options) -> StreamRead:
    url = reverse("chat:reply_stream", args=[reply.pk])
    return read_stream_blocking(application, "GET", url, headers=[cookie], **options)


def test_the_reply_streams_as_escaped_tokens_then_its_charge(
    application, cookie, reply, member, fake_llm
):
    fake_llm.reply("", chunks=PIECES, input_tokens=20, token_interval=0.02)

    answer = read(application, cookie, reply)

    assert answer.headers[b"content-type"] == b"text/event-stream"
    assert answer.headers[b"cache-control"] == b"no-cache, no-store"
    events = sse_events(answer)
    tokens = [data for name, data in events if name == "token"]
    # Each token as its own event, HTML-escaped (htmx swaps it in as markup).
    assert tokens == ["Fish ", "&amp; ", "chips", "\n", "&lt;b&gt;not bold&lt;/b&gt;"]
    name, end = events[-1]
    assert name == "end"
    # 20 read at 1 per 1,000 and 5 written at 2 per 1,000: 0.03, rounded up.
    assert "Charged 0.03 credits" in end
    assert 'id="navbar-credits"' in end and 'hx-swap-oob="true"' in end
    reply.refresh_from_db()
    assert (reply.state, reply.content) == (Message.State.COMPLETE, "".join(PIECES))
    assert ledger.balance(member).available == Decimal("99.97")


def test_a_second_connection_gets_the_stored_reply_and_asks_no_model(
    application, cookie, reply, fake_llm
):
    fake_llm.reply("Soup.")
    read(application, cookie, reply)
    again = sse_events(read(application, cookie, reply))
    assert again[0] == ("token", "Soup.")
    assert again[-1][0] == "end"
    assert len(fake_llm.requests) == 1


def test_a_page_left_mid_reply_keeps_what_was_generated_and_pays_for_it(
    application, cookie, reply, member, fake_llm
):
    fake_llm.reply("", chunks=[f"t{n} " for n in range(40)], token_interval=0.03)

    def after_two_tokens(answer: StreamRead) -> bool:
        return sum(chunk.startswith(b"event: token") for chunk in answer.chunks) >= 2

    read(application, cookie, reply, leave_after=after_two_tokens)

    assert fake_llm.requests[0].finished.wait(5)
    reply.refresh_from_db()
    assert reply.state == Message.State.STOPPED
    assert reply.content.startswith("t0 t1 ")
    assert reply.credits_charged > 0
    assert ledger.balance(member).available == Decimal(100) - reply.credits_charged
    assert CreditHold.objects.get(user=member).state == CreditHold.State.SETTLED


def test_a_reply_the_balance_cannot_cover_ends_with_the_reason_and_holds_nothing(
    application, cookie, reply, member, fake_llm
):
    ledger.consume(member, Decimal("99.99"), reference="drain", description="spent elsewhere")

    events = sse_events(read(application, cookie, reply))

    assert events[-1][0] == "end"
    assert "Insufficient credits" in events[-1][1]
    assert fake_llm.requests == []
    assert not CreditHold.objects.exists()
    reply.refresh_from_db()
    assert reply.state == Message.State.FAILED
