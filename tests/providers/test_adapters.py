"""One conformance suite for every adapter: each against its wire-faithful fake on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from sluice.providers.base import Message, Provider, ProviderRequest
from sluice.providers.errors import ProviderError
from sluice.providers.pool import ProviderPool
from sluice.providers.registry import TYPES
from sluice.structured.native import prepare
from sluice.testing import FakeProvider, Script
from sluice.workflows.loader import ConfigError, build_catalog
from tests.providers.adapters import collect

KINDS = {name: entry.fake for name, entry in TYPES.items() if entry.fake}  # provider type → its fake's protocol
SCHEMA = {
    "type": "object",
    "properties": {"reply": {"type": "string"}},
    "required": ["reply"],
    "additionalProperties": False,
}
REQUEST = ProviderRequest(
    model="m-1",
    messages=(Message("user", "hi"), Message("assistant", "hello"), Message("user", "more")),
    system="be brief",
    params={"temperature": 0.2, "max_tokens": 64},
)


@pytest.fixture(params=list(KINDS))
async def adapter(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Provider, FakeProvider]]:
    async for found in _adapter(request.param):
        yield found


async def _adapter(provider_type: str, **options: object) -> AsyncIterator[tuple[str, Provider, FakeProvider]]:
    async with FakeProvider(KINDS[provider_type], text='{"reply": "fine"}') as fake:
        record = {"type": provider_type, "api_key": "secret-key", "base_url": fake.base_url, **options}
        pool = ProviderPool(build_catalog({"providers": {"p": record}, "workflows": {}}, {}))
        try:
            yield provider_type, pool.get("p"), fake
        finally:
            await pool.aclose()


async def test_streams_text_usage_and_finish(adapter: tuple[str, Provider, FakeProvider]) -> None:
    _, provider, fake = adapter
    fake.script(Script(chunk_delay=0.01))  # paced, so events arrive apart (an adapter may join events read together)
    chunks = await collect(provider, REQUEST)
    assert "".join(c.text for c in chunks) == '{"reply": "fine"}'
    assert len([c for c in chunks if c.text]) > 1
    usage = [c.usage for c in chunks if c.usage]
    assert usage and usage[-1].output_tokens > 0 and usage[-1].input_tokens > 0
    assert len(fake.requests) == 1


async def test_speaks_the_providers_wire_format(adapter: tuple[str, Provider, FakeProvider]) -> None:
    provider_type, provider, fake = adapter
    await collect(provider, REQUEST)
    sent = fake.requests[0]
    body, headers = sent.body, sent.headers
    if provider_type in ("openai", "openai-compatible"):
        assert sent.path == "/v1/chat/completions" and headers["authorization"] == "Bearer secret-key"
        assert body["messages"][0] == {"role": "system", "content": "be brief"} and body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        assert body["max_completion_tokens" if provider_type == "openai" else "max_tokens"] == 64
    elif provider_type == "anthropic":
        assert sent.path == "/v1/messages" and headers["x-api-key"] == "secret-key"
        assert headers["anthropic-version"] == "2023-06-01"
        assert body["system"] == "be brief" and [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert body["max_tokens"] == 64 and body["stream"] is True
    elif provider_type == "gemini":
        assert sent.path == "/v1beta/models/m-1:streamGenerateContent" and headers["x-goog-api-key"] == "secret-key"
        assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 64}
    else:
        assert sent.path == "/api/chat" and body["stream"] is True
        assert body["options"] == {"temperature": 0.2, "num_predict": 64}


# Each dialect's tell-tale request field, and how the fake answers it (Anthropic: a forced tool's JSON).
WIRE_FIELD = {
    "response_format": "response_format",
    "structured_outputs": "structured_outputs",
    "guided_json": "guided_json",
    "tool": "tool_choice",
    "output_format": "output_config",
    "response_schema": "generationConfig",
    "format": "format",
}
DIALECTS = [(name, dialect) for name in KINDS for dialect in TYPES[name].dialects]


@pytest.mark.parametrize(("provider_type", "dialect"), DIALECTS)
async def test_every_dialect_reaches_the_wire_and_its_answer_comes_back(provider_type: str, dialect: str) -> None:
    options = {"structured_output": dialect} if len(TYPES[provider_type].dialects) > 1 else {}
    async for _, provider, fake in _adapter(provider_type, **options):
        pool_dialect = (
            build_catalog(
                {"providers": {"p": {"type": provider_type, "base_url": fake.base_url, **options}}, "workflows": {}}, {}
            )
            .providers["p"]
            .dialect
        )
        assert pool_dialect == dialect
        mode, request = prepare(ProviderRequest(model="m-1", messages=(Message("user", "hi"),), schema=SCHEMA), dialect)
        chunks = await collect(provider, request)
        assert "".join(c.text for c in chunks) == '{"reply": "fine"}'
        body = fake.requests[0].body
        if dialect == "prompt":
            assert mode == "prompt" and "JSON Schema" in body["messages"][0]["content"]
        else:
            assert mode == "native" and WIRE_FIELD[dialect] in body


async def test_keep_alive_reuses_one_connection(adapter: tuple[str, Provider, FakeProvider]) -> None:
    _, provider, fake = adapter
    for _ in range(3):
        await collect(provider, REQUEST)
    assert len(fake.requests) == 3
    assert len(fake._connections) == 1  # the pooled client kept one connection open


def test_an_unknown_option_is_refused_when_the_config_loads() -> None:
    with pytest.raises(ConfigError, match=r"providers\.p\.api_kee: unknown option"):
        build_catalog({"providers": {"p": {"type": "anthropic", "api_kee": "x"}}, "workflows": {}}, {})


async def test_error_messages_never_carry_the_key(adapter: tuple[str, Provider, FakeProvider]) -> None:
    _, provider, fake = adapter
    fake.script(Script(status=401))
    with pytest.raises(ProviderError) as caught:
        await collect(provider, REQUEST)
    assert "secret-key" not in caught.value.message


async def test_a_request_nobody_streams_is_answered_whole_where_the_provider_can(
    adapter: tuple[str, Provider, FakeProvider],
) -> None:
    provider_type, provider, fake = adapter
    fake.script(Script(chunk_delay=0.01))  # had it streamed, the text would come in several chunks
    chunks = await collect(provider, replace(REQUEST, stream=False))
    assert "".join(c.text for c in chunks) == '{"reply": "fine"}'
    usage = [c.usage for c in chunks if c.usage]
    assert usage and usage[-1].output_tokens > 0 and usage[-1].input_tokens > 0
    if provider_type in ("openai", "openai-compatible"):  # the OpenAI-shaped adapters ask for one JSON answer
        body = fake.requests[0].body
        assert body["stream"] is False and "stream_options" not in body
        assert len(chunks) == 1 and chunks[0].finish_reason == "stop"
    else:  # the others stream as always: the flag is a hint
        assert len([c for c in chunks if c.text]) > 1


async def test_a_whole_answer_that_fails_is_a_provider_error(adapter: tuple[str, Provider, FakeProvider]) -> None:
    _, provider, fake = adapter
    fake.script(Script(status=503))
    with pytest.raises(ProviderError, match="503"):
        await collect(provider, replace(REQUEST, stream=False))


@pytest.mark.parametrize("merge_reads", [True, False])
async def test_openai_events_read_together_are_one_chunk_unless_merge_reads_is_off(merge_reads: bool) -> None:
    text = "one two three four five six seven eight"
    async with FakeProvider("openai", text=text) as fake:
        catalog = build_catalog(
            {
                "providers": {
                    "p": {"type": "openai-compatible", "base_url": fake.base_url, "merge_reads": merge_reads}
                },
                "workflows": {},
            },
            {},
        )
        pool = ProviderPool(catalog)
        try:
            chunks = await collect(pool.get("p"), REQUEST)  # unpaced: the whole stream arrives in one or two reads
        finally:
            await pool.aclose()
    texts = [c.text for c in chunks if c.text]
    assert "".join(texts) == text
    if merge_reads:
        assert len(texts) < 4
    else:
        assert len(texts) == len(Script().pieces(text))  # one chunk per streamed event
