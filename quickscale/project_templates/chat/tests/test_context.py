"""The context sent with a message: the newest turns within the token budget."""

import pytest

from chat.context import MessageTooLong, bounded_context
from llm import metering
from llm.providers import ChatMessage


def turns(*texts: str) -> list[ChatMessage]:
    roles = ("user", "assistant")
    return [ChatMessage(roles[index % 2], text) for index, text in enumerate(texts)]  # type: ignore[arg-type]


def test_everything_is_sent_while_it_fits():
    history = turns("hello", "hi there", "how are you?")
    assert bounded_context(history, budget=10_000, system="Be brief.") == tuple(history)


def test_the_oldest_turns_are_left_out_first_and_the_context_starts_with_the_user():
    history = turns("a" * 100, "b" * 100, "c" * 100, "d" * 100, "e" * 100)
    # Room for the newest three turns (system prompt included), not four.
    budget = metering.estimate_prompt_tokens(history[-3:], "Be brief.")
    sent = bounded_context(history, budget=budget, system="Be brief.")
    assert sent == (history[-3], history[-2], history[-1])
    assert sent[0].role == "user"
    assert metering.estimate_prompt_tokens(sent, "Be brief.") <= budget


def test_an_assistant_turn_cut_from_its_question_is_left_out():
    history = turns("q" * 100, "a" * 100, "q2")
    budget = metering.estimate_prompt_tokens(history[-2:], None)
    assert bounded_context(history, budget=budget, system=None) == (history[-1],)


def test_a_message_that_alone_exceeds_the_budget_is_refused():
    history = turns("x" * 5000)
    with pytest.raises(MessageTooLong) as refused:
        bounded_context(history, budget=1000, system=None)
    assert refused.value.budget == 1000
    assert "too long" in str(refused.value)
