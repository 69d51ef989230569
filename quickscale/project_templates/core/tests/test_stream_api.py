"""``"stream": true`` on the chat service, through the ASGI stack uvicorn serves.

The application is ``core.asgi``'s (the body-limit middleware around the
handler); the provider is the local fake, driven through the official SDK. Each
test reads the stream as a client would, and some leave early.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from decimal import Decimal
from typing import Any

import pytest

from api.models import APIKeyUsage
from api.services import api_key_create
from chat.models import Conversation, Message
from common.testing.database import session_database_url
from common.testing.fake_llm import ANTHROPIC_MODEL, Script
from common.testing.server import uvicorn
from common.testing.streams import StreamRead, read_stream_blocking, sse_data
from credits import ledger
from credits.models import CreditHold, LedgerEntry
from llm import metering
from llm.providers import TokenUsage
from services.models import ServiceUsage

# The views run in other threads and connections: they must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

RUN = "/api/services/chat/run"
PIECES = [f"word{n} " for n in range(12)]


@pytest.fixture
def bearer(member):
    _, token = api_key_create(member, name="stream tests")
    return (b"authorization", f"Bearer {token}".encode())


def stream(application, bearer, inputs: dict[str, Any], **options: Any) -> StreamRead:
    body = json.dumps({"input": inputs, "stream": True}).encode()
    headers = [bearer, (b"content-type", b"application/json")]
    return read_stream_blocking(application, "POST", RUN, headers=headers, body=body, **options)


def chunks(read: StreamRead) -> list[Any]:
    return [payload if payload == "[DONE]" else json.loads(payload) for payload in sse_data(read)]


def text_of(events: list[Any]) -> str:
    return "".join(
        choice["delta"].get("content", "")
        for event in events
        if isinstance(event, dict)
        for choice in event.get("choices", [])
    )


def nothing_charged(user) -> None:
    assert ledger.balance(user).available == Decimal(100)
    assert not LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.CONSUME).exists()
    assert not CreditHold.objects.filter(user=user, state=CreditHold.State.OPEN).exists()


def test_tokens_reach_the_client_before_the_provider_has_sent_the_last(
    application, bearer, chat, member, fake_llm
):
    fake_llm.reply("", chunks=PIECES, token_interval=0.05, input_tokens=40)
    seen_when_first_token: list[tuple[int, bool]] = []

    def on_chunk(read: StreamRead, chunk: bytes) -> None:
        if b'"content":"word0 "' in chunk and not seen_when_first_token:
            request = fake_llm.requests[0]
            seen_when_first_token.append((request.chunks_sent, request.finished.is_set()))

    read = stream(application, bearer, {"message": "Count to twelve."}, on_chunk=on_chunk)

    assert read.status == 200
    assert read.headers[b"content-type"].startswith(b"text/event-stream")
    [(sent_by_then, provider_done)] = seen_when_first_token
    assert sent_by_then < len(PIECES) and not provider_done
    # One body message per token: nothing between the provider and the client buffers.
    assert len([c for c in read.chunks if b'"content":"word' in c]) == len(PIECES)
    events = chunks(read)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "word0 "}
    assert text_of(events) == "".join(PIECES)
    finish, final, done = events[-3:]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert done == "[DONE]"
    assert final["choices"] == []
    assert final["usage"] == {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
    assert final["usage_reported"] is True
    # 40 tokens read at 1 credit per 1,000 + 12 written at 2 per 1,000 = 0.064, rounded up.
    expected = metering.cost_of(chat, TokenUsage(40, 12))
    assert expected == Decimal("0.07")
    assert final["credits_charged"] == "0.07"
    assert ledger.balance(member).available == Decimal(100) - expected
    assert CreditHold.objects.get(user=member).state == CreditHold.State.SETTLED
    usage = ServiceUsage.objects.get(user=member)
    assert (usage.status, usage.origin, usage.credits_charged) == ("succeeded", "api", expected)
    assert APIKeyUsage.objects.filter(usage=usage).exists()
    reply = Message.objects.get(pk=final["details"]["message"])
    assert (reply.state, reply.content, reply.credits_charged) == (
        "complete",
        "".join(PIECES),
        expected,
    )
    assert reply.conversation_id == final["details"]["conversation"]


def test_a_client_that_leaves_mid_stream_pays_for_the_tokens_generated(
    application, bearer, chat, member, fake_llm
):
    fake_llm.reply("", chunks=[f"w{n} " for n in range(40)], token_interval=0.03)

    def after_three_tokens(read: StreamRead) -> bool:
        return sum(b'"content":"w' in chunk for chunk in read.chunks) >= 3

    read = stream(application, bearer, {"message": "Go on and on."}, leave_after=after_three_tokens)

    assert not read.complete
    provider_call = fake_llm.requests[0]
    assert provider_call.finished.wait(5)
    # The provider's stream was closed, so it stopped generating.
    assert provider_call.client_disconnected and provider_call.chunks_sent < 40
    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.state == Message.State.STOPPED
    generated = len(reply.content.split())
    assert 3 <= generated < 40
    # No usage arrived: the tokens were counted (one per piece at least) and charged.
    assert reply.output_tokens >= generated
    expected = metering.cost_of(chat, TokenUsage(reply.input_tokens, reply.output_tokens))
    assert reply.credits_charged == expected > 0
    hold = CreditHold.objects.get(user=member)
    assert hold.state == CreditHold.State.SETTLED
    assert ledger.balance(member).available == Decimal(100) - expected
    assert ServiceUsage.objects.get(user=member).status == ServiceUsage.Status.CANCELLED


def test_a_client_that_disconnects_at_once_costs_nothing_and_asks_no_model(
    application, bearer, chat, member, fake_llm
):
    read = stream(application, bearer, {"message": "Hello?"}, leave_at_once=True)

    assert read.chunks == []
    assert fake_llm.requests == []
    nothing_charged(member)
    assert not CreditHold.objects.filter(user=member).exists()
    assert not ServiceUsage.objects.filter(user=member).exists()
    # Whether the view ran before the disconnect was noticed or not, no reply was
    # started: at most a pending one, which the conversation's next message replaces.
    replies = Message.objects.filter(role=Message.Role.ASSISTANT)
    assert set(replies.values_list("state", flat=True)) <= {Message.State.PENDING}


def test_an_unknown_model_ends_the_stream_with_a_502_error_and_charges_nothing(
    application, bearer, chat, member, fake_llm
):
    chat.model = "no-such-model"
    chat.save()

    read = stream(application, bearer, {"message": "Hello?"})

    error, done = chunks(read)
    assert done == "[DONE]"
    assert error["error"]["status"] == 502
    assert error["error"]["provider_status"] == 404
    assert "no-such-model" in error["error"]["message"]
    nothing_charged(member)
    assert ServiceUsage.objects.get(user=member).status == ServiceUsage.Status.FAILED
    assert Message.objects.get(role=Message.Role.ASSISTANT).state == Message.State.FAILED


def test_a_provider_that_drops_the_stream_midway_charges_nothing(
    application, bearer, chat, member, fake_llm
):
    fake_llm.reply("", chunks=PIECES, disconnect_after=4)

    events = chunks(stream(application, bearer, {"message": "Hello?"}))

    assert text_of(events) == "".join(PIECES[:4])
    assert events[-2]["error"]["status"] == 502
    assert events[-1] == "[DONE]"
    nothing_charged(member)
    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.state == Message.State.FAILED and reply.credits_charged == 0


def test_a_server_that_sends_no_usage_is_charged_the_counted_tokens(
    application, bearer, chat, member, fake_llm
):
    fake_llm.reply("", chunks=PIECES, include_usage=False)

    final = chunks(stream(application, bearer, {"message": "Hello?"}))[-2]

    assert final["usage_reported"] is False
    usage = TokenUsage(final["usage"]["prompt_tokens"], final["usage"]["completion_tokens"])
    assert usage.output_tokens >= len(PIECES)
    assert final["credits_charged"] == str(metering.cost_of(chat, usage))
    assert ledger.balance(member).available == Decimal(100) - metering.cost_of(chat, usage)


def test_a_balance_that_cannot_cover_the_reply_is_a_402_before_anything_is_stored(
    application, chat, fake_llm
):
    from users.tests.factories import make_user

    poor = make_user()
    ledger.grant(poor, Decimal("0.01"), source="admin", reference="poor-grant")
    _, token = api_key_create(poor, name="poor")
    body = json.dumps({"input": {"message": "Hello?"}, "stream": True}).encode()
    read = read_stream_blocking(
        application,
        "POST",
        RUN,
        headers=[(b"authorization", f"Bearer {token}".encode())],
        body=body,
    )

    assert read.status == 402
    assert json.loads(read.body)["error"]["code"] == "insufficient_credits"
    assert fake_llm.requests == []
    assert not Conversation.objects.exists()


def test_the_settle_runs_while_another_stream_holds_the_thread(
    application, bearer, chat, member, fake_llm
):
    """Two streams at once on one process: each is charged its own usage."""
    fake_llm.queue(
        Script(chunks=PIECES[:5], token_interval=0.02, input_tokens=10),
        Script(chunks=PIECES[:7], token_interval=0.02, input_tokens=10),
    )
    reads: list[StreamRead] = []

    def one(message: str) -> None:
        reads.append(stream(application, bearer, {"message": message}))

    threads = [threading.Thread(target=one, args=(f"q{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    charged = sorted(Decimal(chunks(read)[-2]["credits_charged"]) for read in reads)
    expected = sorted(metering.cost_of(chat, TokenUsage(10, n)) for n in (5, 7))
    assert charged == expected
    assert ledger.balance(member).available == Decimal(100) - sum(expected)


def test_stream_on_a_service_that_does_not_stream_is_refused(application, bearer, member, db):
    from services.configuration import ensure_service_rows

    ensure_service_rows(("text_sentiment_analysis",))
    body = json.dumps({"input": {"text": "Nice."}, "stream": True}).encode()
    read = read_stream_blocking(
        application,
        "POST",
        "/api/services/text_sentiment_analysis/run",
        headers=[bearer, (b"content-type", b"application/json")],
        body=body,
    )
    assert read.status == 422
    assert "does not stream" in json.loads(read.body)["error"]["message"]


def test_stream_and_async_together_are_refused(application, bearer, chat, member):
    body = json.dumps({"input": {"message": "Hi"}, "stream": True, "async": True}).encode()
    read = read_stream_blocking(
        application,
        "POST",
        RUN,
        headers=[bearer, (b"content-type", b"application/json")],
        body=body,
    )
    assert read.status == 422
    assert not Conversation.objects.exists()


def test_uvicorn_passes_each_token_through_as_the_provider_writes_it(
    tmp_path, bearer, chat, fake_llm
):
    """The server the product runs under: the first token reaches the client while the
    provider is still writing, over a real socket."""
    fake_llm.reply("", chunks=PIECES, token_interval=0.1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DATABASE_URL=session_database_url(),
        ALLOWED_HOSTS="127.0.0.1",
        OPENAI_API_KEY="sk-test-fake",
        OPENAI_BASE_URL=fake_llm.openai_base_url,
    )
    body = {"input": {"message": "Count."}, "stream": True}
    first_token_seen_at: list[int] = []
    contents: list[str] = []
    with uvicorn(env, tmp_path / "uvicorn.log") as (port, _):
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": bearer[1].decode(), "Content-Type": "application/json"}
        client.request("POST", RUN, body=json.dumps(body), headers=headers)
        response = client.getresponse()
        assert response.status == 200
        while line := response.readline().decode():  # each line as the server sends it
            if not line.startswith("data: {"):
                continue
            for choice in json.loads(line[len("data: ") :]).get("choices", []):
                piece = choice["delta"].get("content")
                if piece and not first_token_seen_at:
                    first_token_seen_at.append(fake_llm.requests[0].chunks_sent)
                if piece:
                    contents.append(piece)
        client.close()
    assert first_token_seen_at[0] < len(PIECES)
    assert "".join(contents) == "".join(PIECES)


def test_an_anthropic_stream_is_passed_on_and_charged_its_reported_usage(
    application, bearer, chat, member, fake_llm
):
    chat.provider = "anthropic"
    chat.model = ANTHROPIC_MODEL
    chat.save()
    fake_llm.reply("", chunks=PIECES[:6], input_tokens=30, output_tokens=9)

    events = chunks(stream(application, bearer, {"message": "Hello?"}))

    assert fake_llm.requests[0].path == "/v1/messages"
    assert text_of(events) == "".join(PIECES[:6])
    final = events[-2]
    assert final["usage"] == {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}
    assert final["usage_reported"] is True
    expected = metering.cost_of(chat, TokenUsage(30, 9))
    assert final["credits_charged"] == str(expected)
    assert ledger.balance(member).available == Decimal(100) - expected


def test_pieces_with_quotes_line_breaks_and_unicode_pass_through_unchanged(
    application, bearer, chat, member, fake_llm
):
    """Both ends parse and write the SSE lines themselves: every character survives."""
    pieces = ['say "hi"\n', "naïve ", "\u2028✓ ", "back\\slash ", "日本語", "{}[]"]
    fake_llm.reply("", chunks=pieces)

    events = chunks(stream(application, bearer, {"message": "Odd text, please."}))

    assert [c["choices"][0]["delta"]["content"] for c in events[: len(pieces)]] == pieces
    assert events[len(pieces)]["choices"][0]["finish_reason"] == "stop"
    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert (reply.state, reply.content) == (Message.State.COMPLETE, "".join(pieces))


def test_a_streamed_message_continues_its_conversation_and_a_busy_one_is_refused(
    application, bearer, chat, member, fake_llm
):
    fake_llm.reply("", chunks=["Paris."])
    first = chunks(stream(application, bearer, {"message": "Capital of France?"}))[-2]
    conversation = first["details"]["conversation"]
    fake_llm.reply("", chunks=["Berlin."])

    second = chunks(
        stream(application, bearer, {"message": "Germany?", "conversation": conversation})
    )

    assert second[-2]["details"]["conversation"] == conversation
    sent = fake_llm.requests[1].body["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [
        "Capital of France?",
        "Paris.",
        "Germany?",
    ]
    assert Conversation.objects.get().messages.count() == 4
    # A reply still streaming in the conversation: refused before anything is stored or held.
    Message.objects.filter(pk=second[-2]["details"]["message"]).update(
        state=Message.State.STREAMING
    )
    held_before = CreditHold.objects.count()

    read = stream(application, bearer, {"message": "And Spain?", "conversation": conversation})

    assert read.status == 422
    assert "still being written" in json.loads(read.body)["error"]["message"]
    assert Conversation.objects.get().messages.count() == 4
    assert CreditHold.objects.count() == held_before
    assert len(fake_llm.requests) == 2
