"""Per-token credits: hold the most a call can cost, then settle to the provider's usage.

A call's price is known only once the provider reports its ``usage``, so:

1. ``open_hold`` reserves ``max_cost``: the prompt's *estimated* input tokens plus
   ``max_tokens`` output tokens, at the service's prices. ``InsufficientCredits``
   (nothing held) when the available balance cannot cover it; the provider is
   never called then.
2. ``settle_usage`` charges ``cost_of`` the tokens the provider reported and frees the
   rest of the hold; ``release`` charges nothing (a provider error, a refused reply).

Every write goes through ``credits.ledger`` (``hold``/``settle``/``release``), so a
hold nobody closes (a process killed mid-call) is freed by the ledger's sweep after
``expires_at``, uncharged.

The prompt estimate is an upper bound, documented and deliberate: the real
tokenizers (tiktoken, Anthropic's) download their tables at run time, which a
product cannot count on. Byte-level BPE tokenizers (GPT, Claude, Llama 3, Mistral's
tekken) never produce more tokens than the UTF-8 bytes they encode, and
SentencePiece with byte fallback never more than one per byte either, so
``estimate_prompt_tokens`` counts UTF-8 bytes, plus ``MESSAGE_OVERHEAD_TOKENS`` per
message for the chat format's role markers and ``REQUEST_OVERHEAD_TOKENS`` for the
reply's priming. English text is about 4 bytes a token, so the hold is about four
times the input's real cost; it is settled to the real usage right after the call.

Costs are in credits, rounded up to 0.01 (``credits.ledger.round_up_cost``): a call
is never charged less than its tokens cost.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from credits import ledger
from credits.models import LedgerEntry
from llm.models import LLMServiceConfig
from llm.providers import ChatMessage, LLMRequest, TokenUsage
from users.models import CustomUser

logger = logging.getLogger(__name__)

MESSAGE_OVERHEAD_TOKENS = 8
REQUEST_OVERHEAD_TOKENS = 16
HOLD_KEY_PREFIX = "llm:"
THOUSAND = Decimal(1000)
ZERO = Decimal("0.00")


def estimate_prompt_tokens(
    messages: Iterable[ChatMessage],
    system: str | None = None,
    json_schema: dict[str, Any] | None = None,
) -> int:
    """An upper bound of the input tokens of a prompt (see the module docstring).

    ``json_schema`` counts too: a provider may put it in the prompt.
    """
    total = REQUEST_OVERHEAD_TOKENS
    texts = [message.content for message in messages]
    if system:
        texts.append(system)
    if json_schema is not None:
        texts.append(json.dumps(json_schema))
    for text in texts:
        total += len(text.encode("utf-8")) + MESSAGE_OVERHEAD_TOKENS
    return total


def estimate_request_tokens(request: LLMRequest) -> int:
    """``estimate_prompt_tokens`` of everything ``request`` sends."""
    return estimate_prompt_tokens(request.messages, request.system, request.json_schema)


def cost_of(config: LLMServiceConfig, usage: TokenUsage) -> Decimal:
    """What ``usage`` costs at the service's per-1,000-token prices, rounded up to 0.01."""
    raw = (
        Decimal(usage.input_tokens) * config.input_price_per_1k
        + Decimal(usage.output_tokens) * config.output_price_per_1k
    ) / THOUSAND
    return ledger.round_up_cost(raw)


def max_cost(config: LLMServiceConfig, request: LLMRequest, *, attempts: int = 1) -> Decimal:
    """The most ``request`` can cost: estimated input (per attempt) plus ``max_tokens`` output.

    ``attempts`` > 1 for a call that may send the prompt again (a structured reply
    that failed its schema is retried once; only the attempt that succeeds is charged
    for its output, so one ``max_tokens`` covers them).
    """
    input_tokens = estimate_request_tokens(request) * attempts
    return cost_of(config, TokenUsage(input_tokens=input_tokens, output_tokens=request.max_tokens))


def hold_seconds(*, attempts: int = 1) -> int:
    """How long a call's hold lasts before the sweep may free it: longer than any call.

    Each of the call's ``attempts`` (a structured reply that failed its schema is
    asked for again) may take the SDK's timeout once per try, retries included; a
    hold swept before the last attempt answers would leave its reply uncharged.
    """
    per_attempt = int(settings.LLM_REQUEST_TIMEOUT_SECONDS) * (int(settings.LLM_MAX_RETRIES) + 1)
    return max(int(settings.SERVICE_CALL_TIMEOUT_SECONDS), per_attempt * attempts) + 60


def charges(config: LLMServiceConfig) -> bool:
    """Whether calls of this service are charged at all (prices set, credits on)."""
    priced = config.input_price_per_1k > 0 or config.output_price_per_1k > 0
    return priced and bool(settings.CREDIT_SYSTEM_ENABLED)


def open_hold(
    user: CustomUser,
    service_name: str,
    config: LLMServiceConfig,
    request: LLMRequest,
    *,
    attempts: int = 1,
) -> str | None:
    """Hold ``max_cost`` for one call; return the hold's key (None: a free call, no hold).

    ``attempts``: how many prompts the call may send; the hold's cost and its expiry
    (``hold_seconds``) cover them all.

    Raises ``credits.exceptions.InsufficientCredits`` and holds nothing when the
    available balance cannot cover it: refuse the call before calling the provider.
    """
    if not charges(config):
        return None
    amount = max_cost(config, request, attempts=attempts)
    if amount <= 0:
        return None
    key = f"{HOLD_KEY_PREFIX}{service_name}:{uuid.uuid4().hex}"
    ledger.hold(
        user,
        amount,
        key=key,
        description=service_name,
        expires_at=timezone.now() + timedelta(seconds=hold_seconds(attempts=attempts)),
    )
    logger.info(
        "llm hold opened",
        extra={"service": service_name, "user_id": user.pk, "key": key, "held": str(amount)},
    )
    return key


def settle_usage(key: str | None, config: LLMServiceConfig, usage: TokenUsage) -> Decimal:
    """Charge the held call ``key`` what ``usage`` costs; return the credits charged.

    Idempotent (the ledger's settle is). A free call (``key`` None) costs 0.
    Raises ``credits.exceptions.HoldReleased`` when the hold was released or
    swept first: nothing is charged then.
    """
    entry = settle_entry(key, config, usage)
    return -entry.amount if entry is not None else ZERO


def settle_entry(
    key: str | None, config: LLMServiceConfig, usage: TokenUsage
) -> LedgerEntry | None:
    """``settle_usage``, returning the ledger entry of the charge (None: nothing charged)."""
    if key is None:
        return None
    return ledger.settle(key, amount=cost_of(config, usage))


def release(key: str | None) -> None:
    """Free the held call ``key`` without charging anything (idempotent; None: no hold)."""
    if key is not None:
        ledger.release(key)
