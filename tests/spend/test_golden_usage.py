"""Golden usage: the usage objects of each provider's documentation (prompt-cache reads and writes, reasoning),
reported by its wire-faithful fake, streamed and not, come out of Sluice counted field by field and priced to the
last digit as `genai-prices` prices the same objects (its own extractor reads them, not Sluice's adapters)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest

from sluice.testing import FakeProvider, Script
from tests.conftest import StartGateway, chat_body, write_config

# OpenAI, "Prompt caching" and "Reasoning models" guides: a cached prompt, reasoning tokens in the completion.
OPENAI_CACHED = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 192,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
# Anthropic, "Prompt caching": the first call writes the cache, the next one reads it.
ANTHROPIC_WRITE = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188086,
    "cache_read_input_tokens": 0,
    "output_tokens": 393,
}
ANTHROPIC_READ = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 188086,
    "output_tokens": 393,
}
# Gemini, "Context caching" and "Thinking": cached content and thoughts in `usageMetadata`.
GEMINI_CACHED = {
    "promptTokenCount": 1000,
    "cachedContentTokenCount": 600,
    "candidatesTokenCount": 200,
    "thoughtsTokenCount": 150,
    "totalTokenCount": 1350,
}

CASES = [
    # (fake's protocol, provider type, model, documented usage, genai-prices' view of the answer)
    ("openai", "openai", "gpt-4o", OPENAI_CACHED, ("openai", "chat", "model", "usage")),
    ("openai", "openai", "o3-mini", OPENAI_CACHED, ("openai", "chat", "model", "usage")),
    ("anthropic", "anthropic", "claude-sonnet-4-5", ANTHROPIC_WRITE, ("anthropic", "default", "model", "usage")),
    ("anthropic", "anthropic", "claude-sonnet-4-5", ANTHROPIC_READ, ("anthropic", "default", "model", "usage")),
    ("anthropic", "anthropic", "claude-3-5-haiku-latest", ANTHROPIC_WRITE, ("anthropic", "default", "model", "usage")),
    ("gemini", "gemini", "gemini-2.5-flash", GEMINI_CACHED, ("google", "default", "modelVersion", "usageMetadata")),
]


def genai_price(model: str, usage: dict[str, Any], view: tuple[str, str, str, str]) -> Decimal:
    provider, flavor, model_field, usage_field = view
    extracted = genai_prices.extract_usage(
        {model_field: model, usage_field: usage}, provider_id=provider, api_flavor=flavor
    )
    return extracted.calc_price().total_price


def catalog(tmp_path: Path, kind: str, fake: FakeProvider) -> Path:
    return write_config(
        tmp_path,
        f"providers:\n  p: {{type: {kind}, base_url: '{fake.base_url}', api_key: k}}\n"
        "workflows:\n  w:\n    chain: [{provider: p, model: m}]\n",
    )


@pytest.mark.parametrize(("protocol", "kind", "model", "usage", "view"), CASES, ids=lambda v: str(v)[:20])
async def test_documented_usage_is_counted_and_priced_as_genai_prices_prices_it(
    start_gateway: StartGateway,
    tmp_path: Path,
    protocol: str,
    kind: str,
    model: str,
    usage: dict[str, Any],
    view: tuple[str, str, str, str],
) -> None:
    expected = genai_price(model, usage, view)
    async with FakeProvider(protocol) as fake:
        gw = await start_gateway(config_path=catalog(tmp_path, kind, fake))
        async with gw.client() as client:
            fake.script(Script(text="The answer.", usage=usage), Script(text="The answer.", usage=usage))
            # Streamed: the worker streams every attempt.
            ai = await client.post("/v1/ai", json=chat_body("hi", f"p/{model}"))
            assert ai.status_code == 200, ai.text
            streamed = ai.json()["meta"]
            # Not streamed where the provider has it (a non-streamed chat completion asks the OpenAI types so).
            completion = await client.post(
                "/v1/chat/completions", json={"model": f"p/{model}", "messages": [{"role": "user", "content": "hi"}]}
            )
            assert completion.status_code == 200, completion.text
            await gw.gateway.passthrough.log.flush()
            record = await client.get(f"/v1/requests/{completion.headers['x-request-id']}")
        if protocol == "openai":  # the other adapters stream either way
            assert [request.body.get("stream", False) for request in fake.requests] == [True, False]
    for meta in (streamed, record.json()["meta"]):
        assert Decimal(repr(meta["cost_usd"])) == expected, (meta, expected)
        assert meta["price_source"] == "genai-prices"
        assert meta["prices_version"] == genai_prices.__version__
        assert meta["usage"] == counted(kind, usage)
        assert meta["attempts"][0]["cost_usd"] == meta["cost_usd"]
    assert record.json()["cost_usd"] == float(expected)
    assert record.json()["usage"] == counted(kind, usage)
    attempt = record.json()["attempts"][0]
    assert attempt["cost_usd"] == float(expected) and attempt["price_source"] == "genai-prices"
    assert attempt["usage_estimated"] is False


def counted(kind: str, usage: dict[str, Any]) -> dict[str, Any]:
    """Sluice's `meta.usage` of a documented usage object: the whole input (cache included), the cache's share."""
    if kind == "anthropic":
        read, written = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
        counts = {
            "input_tokens": usage["input_tokens"] + read + written,
            "output_tokens": usage["output_tokens"],
            "cached_input_tokens": read,
            "cache_write_tokens": written,
        }
    elif kind == "gemini":
        counts = {
            "input_tokens": usage["promptTokenCount"],
            "cached_input_tokens": usage["cachedContentTokenCount"],
            "output_tokens": usage["candidatesTokenCount"] + usage["thoughtsTokenCount"],
            "reasoning_tokens": usage["thoughtsTokenCount"],
        }
    else:
        counts = {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "cached_input_tokens": usage["prompt_tokens_details"]["cached_tokens"],
            "reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"],
        }
    return {name: value for name, value in counts.items() if value}


async def test_a_model_of_your_own_costs_its_override_price_and_nothing_without_one(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Ollama's documented counts (`prompt_eval_count` 26, `eval_count` 298) at the price the catalog sets; the
    simulated provider, with no price set, costs 0 and says so."""
    async with FakeProvider("ollama") as fake:
        config = write_config(
            tmp_path,
            f"providers:\n  local: {{type: ollama, base_url: '{fake.base_url}',"
            " prices: {llama3.2: {input: 0.1, output: 0.2}}}\n",
        )
        gw = await start_gateway(config_path=config)
        fake.script(Script(text="Hi.", usage={"prompt_eval_count": 26, "eval_count": 298}))
        async with gw.client() as client:
            priced = await client.post("/v1/ai", json=chat_body("hi", "local/llama3.2"))
            free = await client.post("/v1/ai", json=chat_body("hi", "demo"))
    meta = priced.json()["meta"]
    assert Decimal(repr(meta["cost_usd"])) == (26 * Decimal("0.1") + 298 * Decimal("0.2")) / 1_000_000
    assert meta["price_source"] == "override"
    assert free.json()["meta"]["cost_usd"] == 0 and free.json()["meta"]["price_source"] == "free"
