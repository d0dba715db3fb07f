"""The price table: genai-prices' figure to the last digit on its fast path, overrides, free and unknown models."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices.data_snapshot import get_snapshot

from sluice.providers.base import Usage
from sluice.spend.prices import FREE, GENAI_PRICES, OVERRIDE, UNKNOWN, Prices, _genai, _linear_rates
from sluice.workflows.loader import build_catalog

MAPPED = ("openai", "anthropic", "google", "groq", "together", "openrouter")


def random_usage(rng: random.Random) -> Usage:
    total = rng.randrange(0, 300_000)
    read = rng.randrange(0, total + 1)
    written = rng.randrange(0, total - read + 1)
    output = rng.randrange(0, 40_000)
    return Usage(
        total,
        output,
        cached_input_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=rng.randrange(0, output + 1),
    )


def test_the_fast_path_prices_every_linear_model_exactly_as_genai_prices() -> None:
    """Every model of the providers Sluice maps, at its price today, on random usages: the per-token rates give
    genai-prices' own Decimal (`ModelPrice.calc_price`, through `_genai`), digit for digit."""
    rng = random.Random(19)
    checked = 0
    for provider in get_snapshot().providers:
        if provider.id not in MAPPED:
            continue
        for model in provider.models:
            model_price = model.get_prices(datetime.now(UTC))
            rates = _linear_rates(model_price)
            if rates is None:
                continue
            for _ in range(5):
                usage = random_usage(rng)
                assert rates.cost(usage) == _genai(model_price, usage), (provider.id, model.id)
                checked += 1
    assert checked > 1000


def prices(tmp_path: Path, providers: dict[str, object]) -> Prices:
    catalog = build_catalog({"providers": providers, "workflows": {}}, {})
    return Prices(lambda: catalog)


def test_sources_overrides_and_worst_cases(tmp_path: Path) -> None:
    table = prices(
        tmp_path,
        {
            "openai": {"type": "openai", "api_key": "k"},
            "claude": {"type": "anthropic", "api_key": "k"},
            "local": {
                "type": "openai-compatible",
                "base_url": "http://127.0.0.1:1/v1",
                "prices": {"qwen": {"input": 1, "output": 2, "cache_read": 0.5}},
            },
            "groq": {"type": "openai-compatible", "preset": "groq", "api_key": "k"},
            "ollama": {"type": "ollama"},
        },
    )
    usage = Usage(1000, 100, cached_input_tokens=400)
    assert table.price("local", "qwen", usage).source == OVERRIDE
    assert table.price("local", "qwen", usage).cost == (600 * 1 + 400 * Decimal("0.5") + 100 * 2) / Decimal(10**6)
    assert table.price("local", "other", usage).source == FREE and table.price("ollama", "x", usage).cost == 0
    assert table.price("openai", "gpt-4o-mini", usage).source == GENAI_PRICES
    assert table.price("groq", "llama-3.3-70b-versatile", usage).source == GENAI_PRICES
    unknown = table.price("openai", "my-fine-tune-nobody-knows", usage)
    assert (unknown.source, unknown.cost) == (UNKNOWN, 0)
    assert table.worst_case("openai", "my-fine-tune-nobody-knows", 10, 10) is None
    assert table.worst_case("ollama", "x", 10, 10) == 0
    # The worst case prices every input token as a cache write where that costs more (Anthropic: 1.25 times).
    worst = table.worst_case("claude", "claude-3-5-haiku-latest", 1000, 100)
    assert worst is not None and worst > table.price("claude", "claude-3-5-haiku-latest", Usage(1000, 100)).cost
    # Tiered prices (by prompt size) go through genai-prices each time.
    tiered = table.price("claude", "claude-sonnet-4-5", Usage(250_000, 10))
    assert tiered.cost > 250_000 * Decimal(3) / 10**6


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4-5"])
def test_historical_prices_follow_the_attempts_date(tmp_path: Path, model: str) -> None:
    table = prices(tmp_path, {"p": {"type": "openai" if model.startswith("gpt") else "anthropic", "api_key": "k"}})
    today = table.price("p", model, Usage(1000, 1000))
    assert today.cost > 0
    # The same usage priced at the date of the attempt (genai-prices keeps the history): never an error.
    assert table.price("p", model, Usage(1000, 1000), at=datetime(2024, 6, 1, tzinfo=UTC)).cost > 0
