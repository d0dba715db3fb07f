"""Usage of every attempt: a stream cut before the provider's usage chunk is counted from its text (and marked
estimated), an attempt refused before any output used nothing, and the request's usage adds up its attempts."""

from __future__ import annotations

import math
from pathlib import Path

from sluice.providers.base import Usage
from sluice.spend.usage import total, usage_from_meta, usage_meta
from sluice.testing import FakeProvider, Script
from tests.conftest import MASTER_KEY, StartGateway, chat_body, write_config
from tests.delivery.receiver import json_of, running_receiver


async def test_a_cut_attempt_is_estimated_from_its_text_and_the_request_adds_up_every_attempt(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    async with FakeProvider("openai") as fake:
        fake.script(
            Script(status=503),  # refused before any output: not billed
            Script(text="alpha beta gamma delta epsilon", cut_after=3),
            Script(text="fine", usage={"prompt_tokens": 50, "completion_tokens": 7}),
        )
        # a 503 is retried on the same entry; a cut stream moves on to the next one
        config = write_config(
            tmp_path,
            f"providers:\n  p: {{type: openai, base_url: '{fake.base_url}', api_key: k,"
            " prices: {a: {input: 1, output: 10}, b: {input: 2, output: 20}}}\n"
            "workflows:\n  w:\n    chain: [{provider: p, model: a, retries: 1}, {provider: p, model: b}]\n",
        )
        gw = await start_gateway(config_path=config)
        async with gw.client() as client:
            answer = await client.post("/v1/ai", json=chat_body("hello there", "w"))
            record = await client.get(f"/v1/requests/{answer.json()['request_id']}")
    meta = answer.json()["meta"]
    refused, cut, answered = meta["attempts"]
    assert refused["usage"] == {"input_tokens": 0, "output_tokens": 0} and refused["cost_usd"] == 0
    prompt = "hello there"
    assert cut["usage"] == {"input_tokens": math.ceil(len(prompt) / 4), "output_tokens": 4, "estimated": True}
    assert cut["cost_usd"] == (math.ceil(len(prompt) / 4) * 1 + 4 * 10) / 1e6
    assert answered["usage"] == {"input_tokens": 50, "output_tokens": 7}
    assert meta["usage"] == {"input_tokens": 50 + math.ceil(len(prompt) / 4), "output_tokens": 11, "estimated": True}
    assert meta["cost_usd"] == cut["cost_usd"] + (50 * 2 + 7 * 20) / 1e6
    assert meta["price_source"] == "override"
    rows = record.json()["attempts"]
    assert [row["usage_estimated"] for row in rows] == [False, True, False]
    assert [row["tokens_out"] for row in rows] == [0, 4, 7]
    assert record.json()["cost_usd"] == meta["cost_usd"]


def test_usage_adds_up_and_round_trips_as_json() -> None:
    one = Usage(100, 10, cached_input_tokens=40, cache_write_tokens=20, reasoning_tokens=5)
    two = Usage(7, 3, estimated=True)
    summed = total([one, two])
    assert summed == Usage(107, 13, cached_input_tokens=40, cache_write_tokens=20, reasoning_tokens=5, estimated=True)
    assert usage_from_meta(usage_meta(summed)) == summed
    assert usage_meta(Usage(1, 2)) == {"input_tokens": 1, "output_tokens": 2}


async def test_the_webhook_and_the_request_log_carry_the_cost_and_usage(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path, "providers:\n  simulated: {type: simulated, pace_ms: 0, prices: {'*': {input: 3, output: 15}}}\n"
    )
    gw = await start_gateway(config_path=config)
    async with running_receiver() as receiver, gw.client() as client:
        accepted = await client.post("/v1/ai/async", json=chat_body("hello", webhook_url=receiver.url))
        payload = json_of(await receiver.next(wait=15))
        logged = await client.get(
            f"/v1/admin/requests/{accepted.json()['request_id']}", headers={"Authorization": f"Bearer {MASTER_KEY}"}
        )
    meta = payload["meta"]
    assert meta["cost_usd"] > 0 and meta["price_source"] == "override"
    assert meta["usage"]["input_tokens"] > 0 and meta["usage"]["output_tokens"] > 0
    assert payload["ai_response"]["meta"]["cost_usd"] == meta["cost_usd"]
    assert logged.json()["meta"]["cost_usd"] == meta["cost_usd"]
