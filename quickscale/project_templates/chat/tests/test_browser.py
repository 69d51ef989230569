"""A streamed chat in a real Chromium served by uvicorn (fixtures: common/testing/browser.py).

pytest-django's live server speaks WSGI, where Django reads an async stream to
its end before sending it; the product runs under uvicorn, so this journey does
too, on the test database, with the fake provider answering one token every
0.3 s: the reply must show its first words while the provider still writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from chat.models import Conversation, Message
from common.testing.browser import DESKTOP, ConsoleWatch
from common.testing.database import session_database_url
from common.testing.fake_llm import FakeLLM
from common.testing.server import uvicorn
from credits import ledger
from users.tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORDS = [f"word{n} " for n in range(8)]


@pytest.fixture
def served(tmp_path, fake_llm: FakeLLM) -> Iterator[str]:
    """The project under uvicorn on the test database, its provider the fake; yields its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DATABASE_URL=session_database_url(),
        DEBUG="True",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        OPENAI_API_KEY="sk-test-fake",
        OPENAI_BASE_URL=fake_llm.openai_base_url,
        LLM_REQUEST_TIMEOUT_SECONDS="10",
    )
    with uvicorn(env, tmp_path / "uvicorn.log") as (port, _):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def chromium_page(browser: Any, served: str) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, base_url=served)
    context.set_default_timeout(20_000)
    page = context.new_page()
    watch = ConsoleWatch()
    page.on("console", watch.on_console)
    page.console = watch
    yield page
    context.close()
    watch.assert_clean(errors=False)


def sign_in(page: Any, user: Any, url: str) -> None:
    """Give the browser a session of ``user`` (the server checks passwords with other hashers
    than this test process's fast one, so the login form is the other journeys' business)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": url}])


def test_a_chat_reply_streams_word_by_word_then_shows_its_charge(
    chromium_page: Any, served: str, chat, fake_llm: FakeLLM
):
    page = chromium_page
    user = make_user("chatter@example.com")
    ledger.grant(user, 5, source="admin", reference="browser-chat")
    fake_llm.reply("", chunks=WORDS, token_interval=0.3, input_tokens=50)

    sign_in(page, user, served)
    page.goto("/")
    expect(page.locator("#navbar-credits")).to_have_text("Credits 5")
    page.goto("/chat/")
    page.get_by_role("button", name="New conversation").click()
    page.evaluate("window.sameDocument = true")  # gone after any full page load
    page.get_by_label("Message").fill("Count to eight, slowly.")
    page.get_by_role("button", name="Send").click()

    reply = page.locator("article.is-info .chat-text").last
    # The first words are on the page while the provider is still writing the rest.
    expect(reply).to_contain_text("word0")
    assert "word7" not in reply.inner_text()
    expect(page.locator("article.is-info .chat-charge").last).to_contain_text(
        "Charged 0.07 credits"
    )
    expect(reply).to_have_text("".join(WORDS).strip())
    # 50 read at 1 per 1,000 + 8 written at 2 per 1,000 = 0.066, charged 0.07.
    expect(page.locator("#navbar-credits")).to_contain_text("4.93")
    expect(page.get_by_label("Message")).to_have_value("")  # a fresh form for the next one
    assert page.evaluate("window.sameDocument") is True
    assert ledger.balance(user).available == Decimal("4.93")
    message = Message.objects.get(role=Message.Role.ASSISTANT)
    assert message.state == Message.State.COMPLETE

    # The conversation is listed under its first message, renamed, then deleted.
    page.goto("/chat/")
    page.get_by_role("link", name="Count to eight, slowly.").click()
    page.get_by_label("Title").fill("Counting")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#conversation-title")).to_have_text("Counting")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{page.url.split('/chat/')[0]}/chat/")
    assert not Conversation.objects.exists()
