"""`POST /v1/embeddings` through a real gateway: OpenAI's shapes, the chain's failover, the request log without the
vectors, and the official `openai` package unchanged."""

from __future__ import annotations

import asyncio
import base64
import math
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from sluice.providers.simulated import embedding
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols.base import fake_vector
from tests.conftest import RunningGateway, StartGateway, free_port, write_config


@pytest.fixture
async def gem() -> AsyncIterator[FakeProvider]:
    async with FakeProvider("gemini") as fake:
        yield fake


@pytest.fixture
async def gateway(start_gateway: StartGateway, tmp_path: Path, gem: FakeProvider) -> RunningGateway:
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = write_config(
        tmp_path,
        f"""
providers:
  simulated: {{type: simulated, pace_ms: 0}}
  gem: {{type: gemini, api_key: k, base_url: "{gem.base_url}"}}
  down: {{type: gemini, api_key: k, base_url: "{refused}"}}
  claude: {{type: anthropic, api_key: k, base_url: "{refused}"}}
workflows:
  emb:
    chain:
      - {{provider: simulated, model: sim-embed}}
  refused-first:
    chain:
      - {{provider: down, model: gemini-embedding-001, retries: 0}}
      - {{provider: simulated, model: sim-embed}}
  failing-first:
    chain:
      - {{provider: gem, model: gemini-embedding-001, retries: 0}}
      - {{provider: simulated, model: sim-embed}}
  anthropic-first:
    chain:
      - {{provider: claude, model: claude-x}}
      - {{provider: simulated, model: sim-embed}}
  hooked:
    webhook_url: "https://backend.example/hook"
    chain:
      - {{provider: simulated, model: sim-embed}}
  nothing-works:
    chain:
      - {{provider: claude, model: claude-x}}
      - {{provider: down, model: gemini-embedding-001, retries: 0}}
""",
    )
    return await start_gateway(config_path=config)


async def embed(gw: RunningGateway, **body: Any) -> httpx.Response:
    async with gw.client() as http:
        return await http.post("/v1/embeddings", json=body)


async def logged(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    """The request as `GET /v1/requests/{id}` shows it, once the write-behind log has it."""
    async with gw.client() as http:
        for _ in range(250):
            found = await http.get(f"/v1/requests/{request_id}")
            if found.status_code != 404:
                break
            await asyncio.sleep(0.02)
    assert found.status_code == 200, found.text
    return found.json()


async def test_a_string_input(gateway: RunningGateway) -> None:
    answer = await embed(gateway, model="emb", input="The sluice gate opens")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "list" and body["model"] == "emb"
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0)]
    vector = body["data"][0]["embedding"]
    assert vector == list(embedding("The sluice gate opens", 256))
    assert math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-4)
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert answer.headers["x-request-id"]


async def test_a_list_keeps_its_order_and_dimensions_are_honoured(gateway: RunningGateway) -> None:
    texts = ["first text", "second one", "a third, longer text than the others"]
    answer = await embed(gateway, model="emb", input=texts, dimensions=32)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert [d["index"] for d in data] == [0, 1, 2]
    assert [d["embedding"] for d in data] == [list(embedding(text, 32)) for text in texts]
    assert {len(d["embedding"]) for d in data} == {32}
    alone = await embed(gateway, model="emb", input="second one", dimensions=32)
    assert alone.json()["data"][0]["embedding"] == data[1]["embedding"]  # an input's vector is its own


async def test_base64_is_little_endian_float32(gateway: RunningGateway) -> None:
    floats = (await embed(gateway, model="emb", input=["a b c", "d e"], dimensions=16)).json()
    packed = (await embed(gateway, model="emb", input=["a b c", "d e"], dimensions=16, encoding_format="base64")).json()
    for as_floats, as_base64 in zip(floats["data"], packed["data"], strict=True):
        assert isinstance(as_base64["embedding"], str)
        raw = base64.b64decode(as_base64["embedding"])
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert decoded == pytest.approx(as_floats["embedding"], rel=1e-6, abs=1e-7)


async def test_a_provider_model_pair_over_http(gateway: RunningGateway, gem: FakeProvider) -> None:
    answer = await embed(gateway, model="gem/gemini-embedding-001", input=["one", "two"], dimensions=8)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "gem/gemini-embedding-001"
    assert [d["embedding"] for d in body["data"]] == [fake_vector("one", 8), fake_vector("two", 8)]
    sent = gem.requests[-1]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [r["content"]["parts"][0]["text"] for r in sent.body["requests"]] == ["one", "two"]


async def test_a_workflow_webhook_does_not_apply(gateway: RunningGateway) -> None:
    # The vectors go to the caller only (never recorded), so the request stays a pass-through.
    answer = await embed(gateway, model="hooked", input="hello")
    assert answer.status_code == 200, answer.text
    stored = await logged(gateway, answer.headers["x-request-id"])
    assert stored["status"] == "completed"


async def test_failover_from_a_refused_provider(gateway: RunningGateway) -> None:
    answer = await embed(gateway, model="refused-first", input="hello")
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"][0]["embedding"] == list(embedding("hello", 256))
    record = await logged(gateway, answer.headers["x-request-id"])
    attempts = [(a["provider"], a["status"], a["error_code"]) for a in record["attempts"]]
    assert attempts == [("down", "failed", "provider_unavailable"), ("simulated", "succeeded", None)]
    assert [a["provider"] for a in record["meta"]["attempts"]] == ["down", "simulated"]


async def test_failover_from_a_failing_provider(gateway: RunningGateway, gem: FakeProvider) -> None:
    gem.script(Script(status=500))
    answer = await embed(gateway, model="failing-first", input="hello")
    assert answer.status_code == 200, answer.text
    record = await logged(gateway, answer.headers["x-request-id"])
    assert [(a["provider"], a["status"]) for a in record["attempts"]] == [("gem", "failed"), ("simulated", "succeeded")]
    assert len(gem.requests) == 1


async def test_a_provider_without_embeddings_is_unsupported_and_fails_over(gateway: RunningGateway) -> None:
    answer = await embed(gateway, model="anthropic-first", input="hello")
    assert answer.status_code == 200, answer.text
    record = await logged(gateway, answer.headers["x-request-id"])
    first = record["attempts"][0]
    assert (first["provider"], first["status"], first["error_code"]) == ("claude", "failed", "unsupported_by_provider")
    assert "no embeddings" in first["error_message"]
    assert record["attempts"][1]["status"] == "succeeded"


async def test_the_channel_shows_the_failover(gateway: RunningGateway) -> None:
    answer = await embed(gateway, model="anthropic-first", input="hello")
    events = [
        wire.event.type
        async for batch in gateway.gateway.follow(answer.headers["x-request-id"], 0)
        for wire in batch or ()
    ]
    assert events == ["status", "status", "attempt", "failover", "attempt", "response"]


async def test_every_provider_failing_is_an_error(gateway: RunningGateway) -> None:
    answer = await embed(gateway, model="nothing-works", input="hello")
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["code"] == "provider_unavailable" and error["message"].startswith("every provider failed")
    assert (error["type"], error["param"]) == ("server_error", None)  # OpenAI's error shape


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"input": [1, 2, 3]}, "input: token-id arrays are not supported"),
        ({"input": [[1, 2], [3]]}, "input: token-id arrays are not supported"),
        ({"input": []}, "input: must not be empty"),
        ({"input": ["fine", ""]}, "input: item 1 is an empty string"),
        ({"input": ["fine", {"text": "no"}]}, "input: item 1 is not a string"),
        ({"input": "x", "dimensions": 0}, "dimensions:"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format:"),
        ({"input": "x", "truncate": True}, "truncate:"),
        ({}, "input:"),
    ],
)
async def test_bad_input_names_the_field(gateway: RunningGateway, body: dict[str, Any], says: str) -> None:
    answer = await embed(gateway, model="emb", **body)
    assert answer.status_code == 400, answer.text  # OpenAI's status for a body it refuses, as on chat completions
    error = answer.json()["error"]
    assert error["message"].startswith(says)
    field = says.partition(":")[0]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_request", field)


async def test_an_unknown_model_is_404(gateway: RunningGateway) -> None:
    answer = await embed(gateway, model="nope", input="x")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "model_not_found"
    assert answer.json()["error"]["type"] == "invalid_request_error"


async def test_an_api_key_is_required(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        answer = await http.post("/v1/embeddings", json={"model": "emb", "input": "x"})
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("authentication_error", "missing_api_key", None)


async def test_the_request_log_keeps_the_inputs_and_no_vectors(gateway: RunningGateway) -> None:
    answer = await embed(gateway, model="emb", input=["alpha beta", "gamma"], dimensions=64, user="u-1")
    request_id = answer.headers["x-request-id"]
    record = await logged(gateway, request_id)
    assert record["status"] == "completed" and record["workflow"] == "emb"
    assert record["data"] == {"count": 2, "dimensions": 64}
    assert record["meta"]["usage"] == {"input_tokens": 3, "output_tokens": 0}
    [attempt] = record["attempts"]
    assert (attempt["status"], attempt["tokens_in"]) == ("succeeded", 3)
    stored = await gateway.gateway.store.get_request(request_id)
    assert stored is not None and stored.plan is not None and stored.plan["kind"] == "embeddings"
    assert stored.body == {
        "workflow": "emb",
        "api": "openai.embeddings",
        "input": ["alpha beta", "gamma"],
        "dimensions": 64,
        "user": "u-1",
    }
    # Not one coordinate of the vectors is in the log or the channel.
    coordinate = repr(next(v for v in answer.json()["data"][0]["embedding"] if v))
    logged_text = orjson.dumps([record, stored.data, stored.meta]).decode()
    channel = [wire.data async for batch in gateway.gateway.follow(request_id, 0) for wire in batch or ()]
    assert coordinate not in logged_text and coordinate not in "".join(channel)


def sdk(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.api_key, max_retries=0, timeout=10)


async def test_the_openai_package(gateway: RunningGateway) -> None:
    async with sdk(gateway) as client:
        default = await client.embeddings.create(model="emb", input=["one thing", "another"])  # asks for base64
        floats = await client.embeddings.create(model="emb", input="one thing", encoding_format="float")
        sized = await client.embeddings.create(model="refused-first", input="one thing", dimensions=12)
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="nope", input="x")
    assert default.object == "list" and default.model == "emb"
    assert [d.index for d in default.data] == [0, 1]
    assert default.data[0].embedding == pytest.approx(list(embedding("one thing", 256)), rel=1e-6, abs=1e-7)
    assert default.usage.prompt_tokens == 3 and default.usage.total_tokens == 3
    assert floats.data[0].embedding == list(embedding("one thing", 256))
    assert len(sized.data[0].embedding) == 12
