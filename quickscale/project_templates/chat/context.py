"""The context sent with a new message: the newest turns that fit in a token budget.

A model reads only so much, and every token sent is charged: a conversation's
whole history would grow the cost of each reply without bound. So each call
sends the newest turns whose estimated size (``llm.metering.estimate_prompt_tokens``,
the documented upper bound the credit hold uses too) fits in the budget, with
the system prompt counted in. The new message itself is always sent; when it
alone does not fit, the message is refused before anything is held.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm import metering
from llm.providers import ChatMessage


class MessageTooLong(ValueError):
    """The new message alone is over the context budget."""

    def __init__(self, tokens: int, budget: int) -> None:
        self.tokens = tokens
        self.budget = budget
        super().__init__(
            f"The message is too long: about {tokens} tokens with the instructions, and a "
            f"reply may read at most {budget}. Shorten it or split it in parts."
        )


def bounded_context(
    history: Sequence[ChatMessage], *, budget: int, system: str | None
) -> tuple[ChatMessage, ...]:
    """The newest turns of ``history`` (ending with the new user message) that fit ``budget``.

    The context starts with a user turn (Anthropic requires it; an assistant turn
    whose question was cut off would read as the model's own words anyway).
    Raises ``MessageTooLong`` when the last message alone does not fit.
    """
    if not history:
        return ()
    newest = history[-1]
    needed = metering.estimate_prompt_tokens((newest,), system)
    if needed > budget:
        raise MessageTooLong(needed, budget)
    kept = [newest]
    for message in reversed(history[:-1]):
        candidate = [message, *kept]
        if metering.estimate_prompt_tokens(tuple(candidate), system) > budget:
            break
        kept = candidate
    while kept and kept[0].role != "user":
        kept.pop(0)
    return tuple(kept)
