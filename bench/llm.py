"""LLM streaming benchmark: a streamed chat reply through the product's API vs straight to the fake.

One run. The local fake provider (``common.testing.fake_llm``) is scripted to
answer its first token after 300 ms and then one token every 10 ms. The same
SDK (``openai``'s AsyncOpenAI) streams the same reply two ways:

- baseline: straight to the fake (``chat.completions.create(stream=True)``);
- product: ``POST /api/services/chat/run`` with ``"stream": true`` on one
  uvicorn process (one web process), which checks the key, stores the
  conversation, holds the credits, streams the provider's tokens through and
  settles the hold (the SDK's ``post(..., stream=True)`` reads its chunks).

For each, time to first token (TTFT) and total time, p50 and p95, with 1 and
then 16 streams at once; the table prints what the product adds (target: at most
25 ms to the first token and to the total).

Runs against a scratch database on ``DATABASE_URL``'s server (dropped
afterwards), or on a throwaway embedded PostgreSQL when it is unset.

    .venv/bin/python bench/llm.py [--streams 32] [--tokens 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import TEMPLATE, database_server, scratch_database

FIRST_TOKEN_DELAY = 0.3
TOKEN_INTERVAL = 0.01
TARGET_ADDED_MS = 25.0


@dataclass(frozen=True)
class Timing:
    """One stream: seconds to its first token and to its end, and the tokens it brought."""

    ttft: float
    total: float
    tokens: int


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(TEMPLATE))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("register_services", verbosity=0, stdout=quiet)


def prepare(model: str, streams: int, users: int) -> list[str]:
    """Funded users with an API key each, the chat pointed at the fake; returns the keys."""
    from decimal import Decimal

    from api.services import api_key_create
    from credits import ledger
    from services.configuration import ensure_service_rows
    from services.registry import create_service_instance
    from users.models import CustomUser

    ensure_service_rows(("chat",))
    config = create_service_instance("chat").llm_config()  # type: ignore[attr-defined]
    config.model = model
    config.max_tokens = 200
    config.input_price_per_1k = Decimal("1")
    config.output_price_per_1k = Decimal("2")
    config.save()
    keys = []
    for number in range(users):
        user = CustomUser.objects.create_user(email=f"bench{number}@example.com", password=None)
        ledger.grant(user, Decimal(streams + 100), source="admin", reference=f"bench-{number}")
        keys.append(api_key_create(user, name="bench")[1])
    return keys


async def timed(stream_factory: Any) -> Timing:
    """Open a stream and time its first content token and its end."""
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    stream = await stream_factory()
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta is not None and choice.delta.content:
                tokens += 1
                if first is None:
                    first = time.perf_counter() - started
    total = time.perf_counter() - started
    assert first is not None, "the stream brought no token"
    return Timing(ttft=first, total=total, tokens=tokens)


async def run_streams(stream_factory: Any, count: int, concurrency: int) -> list[Timing]:
    timings: list[Timing] = []
    for start in range(0, count, concurrency):
        batch = min(concurrency, count - start)
        timings += await asyncio.gather(*(timed(stream_factory) for _ in range(batch)))
    return timings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(
    fake_url: str, model: str, product_url: str, keys: list[str], args: Any
) -> list[Any]:
    import openai
    from openai.types.chat import ChatCompletionChunk

    messages = [{"role": "user", "content": "Count slowly, please."}]
    direct = openai.AsyncOpenAI(base_url=fake_url, api_key="sk-bench", max_retries=0)
    # One client per user: 16 streams at once are 16 customers, each with its own
    # credit lots (one user's parallel calls queue on its lots' row locks, by design).
    products = [
        openai.AsyncOpenAI(base_url=f"{product_url}/api", api_key=key, max_retries=0)
        for key in keys
    ]
    turn = 0

    async def straight() -> Any:
        return await direct.chat.completions.create(
            model=model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=200,
            stream=True,
            stream_options={"include_usage": True},
        )

    async def through_api() -> Any:
        nonlocal turn
        turn += 1
        return await products[turn % len(products)].post(
            "/services/chat/run",
            body={"input": {"message": "Count slowly, please."}, "stream": True},
            cast_to=ChatCompletionChunk,
            stream=True,
            stream_cls=openai.AsyncStream[ChatCompletionChunk],
        )

    rows = []
    await run_streams(through_api, 4, 4)  # warm-up: connections, first imports, caches
    await run_streams(straight, 4, 4)
    for concurrency in (1, 16):
        count = max(args.streams, concurrency * 2)
        results = {}
        # Alternate rounds so drift on the machine falls on both sides alike.
        for label, factory in (("direct", straight), ("api", through_api)):
            results[label] = await run_streams(factory, count, concurrency)
        rows.append((concurrency, results))
    await direct.close()
    for product in products:
        await product.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=32, help="streams per side and level")
    parser.add_argument("--tokens", type=int, default=50, help="tokens in each reply")
    parser.add_argument(
        "--one-user", action="store_true", help="every stream from one user (one API key)"
    )
    args = parser.parse_args()
    with database_server() as server, scratch_database(server, "llm") as url:
        setup_django(url)
        from common.testing.fake_llm import OPENAI_MODEL, FakeLLM, Script
        from common.testing.server import uvicorn

        fake = FakeLLM().start()
        # The fake's socket listens with http.server's backlog of 5: 16 clients connecting
        # at once would be refused. Widen it (Linux updates the backlog of a listening socket).
        fake._server.socket.listen(128)
        fake.default = Script(
            chunks=[f"t{n} " for n in range(args.tokens)],
            first_token_delay=FIRST_TOKEN_DELAY,
            token_interval=TOKEN_INTERVAL,
        )
        keys = prepare(OPENAI_MODEL, args.streams * 4 + 64, 1 if args.one_user else 16)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env.update(
            DATABASE_URL=url,
            DEBUG="False",
            SECRET_KEY="bench-only-not-secret-" + "x" * 40,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            OPENAI_API_KEY="sk-bench",
            OPENAI_BASE_URL=fake.openai_base_url,
            API_RATE_LIMIT_PER_MINUTE="0",
            LOW_CREDIT_THRESHOLD="0",
            LOG_LEVEL="WARNING",
        )
        log = Path(f"/tmp/qs-bench-llm-{os.getpid()}.log")
        try:
            with uvicorn(env, log) as (port, _):
                rows = asyncio.run(
                    measure(
                        fake.openai_base_url, OPENAI_MODEL, f"http://127.0.0.1:{port}", keys, args
                    )
                )
        finally:
            fake.stop()
    print_table(rows, args)


def print_table(rows: list[Any], args: Any) -> None:
    print(
        f"fake provider: first token after {FIRST_TOKEN_DELAY * 1000:.0f} ms, then one every "
        f"{TOKEN_INTERVAL * 1000:.0f} ms; {args.tokens} tokens a reply; one uvicorn process"
    )
    header = (
        f"{'streams':>7} {'path':<8} {'TTFT p50':>9} {'TTFT p95':>9} "
        f"{'total p50':>10} {'total p95':>10}   (ms)"
    )
    print(header)
    verdicts = []
    for concurrency, results in rows:
        figures = {}
        for label in ("direct", "api"):
            timings = results[label]
            ttft = [t.ttft * 1000 for t in timings]
            total = [t.total * 1000 for t in timings]
            figures[label] = (
                percentile(ttft, 0.5),
                percentile(ttft, 0.95),
                percentile(total, 0.5),
                percentile(total, 0.95),
            )
            assert all(t.tokens == args.tokens for t in timings), "a stream lost tokens"
            shown = "straight" if label == "direct" else "API"
            print(
                f"{concurrency:>7} {shown:<8} {figures[label][0]:>9.1f} {figures[label][1]:>9.1f} "
                f"{figures[label][2]:>10.1f} {figures[label][3]:>10.1f}"
            )
        added = [a - d for a, d in zip(figures["api"], figures["direct"], strict=True)]
        print(
            f"{concurrency:>7} {'added':<8} {added[0]:>9.1f} {added[1]:>9.1f} "
            f"{added[2]:>10.1f} {added[3]:>10.1f}"
        )
        met = added[0] <= TARGET_ADDED_MS and added[2] <= TARGET_ADDED_MS
        verdicts.append(f"{concurrency} stream(s): {'met' if met else 'NOT met'}")
    print(
        f"target: at most {TARGET_ADDED_MS:.0f} ms added to p50 TTFT and total -> "
        + "; ".join(verdicts)
    )


if __name__ == "__main__":
    main()
