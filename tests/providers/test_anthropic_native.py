"""A `/v1/messages` request's own body on its way to Anthropic (`anthropic_request.native_body`): sent as it came,
with only the gateway's decisions put over it; `count_tokens` against the fake; thinking read from the stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from sluice.providers.anthropic import AnswerReader, AnthropicProvider
from sluice.providers.base import Chunk, Message, ProviderRequest
from sluice.providers.errors import Unsupported
from sluice.providers.messages import ThinkingDelta
from sluice.structured.native import TOOL_NAME, prepare
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols.base import fake_signature, tokens_of
from tests.providers.adapters import adapter, collect

CACHED = {"type": "ephemeral"}
CLIENT_BODY: dict[str, Any] = {
    "model": "my-workflow",
    "max_tokens": 1000,
    "system": [{"type": "text", "text": "You are a CLI.", "cache_control": CACHED}],
    "messages": [
        {"role": "user", "content": "List files."},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Signed reasoning.", "signature": "c2ln"},
                {"type": "thinking", "thinking": "Another provider's reasoning.", "signature": ""},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "README.md"}]},
    ],
    "tools": [{"name": "Bash", "input_schema": {"type": "object"}, "cache_control": CACHED}],
    "thinking": {"type": "enabled", "budget_tokens": 500},
    "metadata": {"user_id": "u-1"},
    "top_k": 5,
    "a_future_field": {"kept": True},
}
NATIVE = {"body": CLIENT_BODY, "beta": "interleaved-thinking-2025-05-14"}


def request(**fields: Any) -> ProviderRequest:
    """The canonical request a run builds for this body (what matters here: model, system, params, native)."""
    values: dict[str, Any] = {"model": "claude-x", "messages": (Message("user", "List files."),), "native": NATIVE}
    return ProviderRequest(**{**values, **fields})


@pytest.fixture
async def anthropic() -> AsyncIterator[tuple[AnthropicProvider, FakeProvider]]:
    """The Anthropic adapter, with a configured beta header, aimed at a fresh fake."""
    headers = {"anthropic-beta": "configured-beta"}
    async with (
        FakeProvider("anthropic") as fake,
        adapter(fake, AnthropicProvider, type="anthropic", api_key="k", headers=headers) as provider,
    ):
        yield provider, fake


def test_the_clients_body_is_sent_as_it_came_with_the_gateways_decisions_over_it() -> None:
    provider = AnthropicProvider("a", client=None)  # type: ignore[arg-type]
    body = provider.body(request(system="Workflow rules.", params={"max_tokens": 50, "temperature": 0.3}))
    signed, _, call = CLIENT_BODY["messages"][1]["content"]
    assert body == {
        **CLIENT_BODY,
        "model": "claude-x",  # the chain entry's
        "stream": True,
        "system": [{"type": "text", "text": "Workflow rules."}, *CLIENT_BODY["system"]],  # breakpoints kept
        "temperature": 0.3,  # the entry's, where the client set none; its max_tokens stays the client's
        "messages": [
            CLIENT_BODY["messages"][0],
            {"role": "assistant", "content": [signed, call]},  # an unsigned thinking block Anthropic would refuse
            CLIENT_BODY["messages"][2],
        ],
    }
    assert CLIENT_BODY["messages"][1]["content"][1]["signature"] == ""  # the client's body itself is untouched


def test_a_string_system_prompt_gets_the_workflows_before_it() -> None:
    provider = AnthropicProvider("a", client=None)  # type: ignore[arg-type]
    native = {"body": {**CLIENT_BODY, "system": "Client rules."}}
    assert (
        provider.body(request(system="Workflow rules.", native=native))["system"] == "Workflow rules.\n\nClient rules."
    )
    assert "system" not in provider.body(request(native={"body": {"messages": []}}))


def test_a_workflow_schema_adds_its_tool_to_the_clients_tools_and_a_reask_its_turns() -> None:
    provider = AnthropicProvider("a", client=None)  # type: ignore[arg-type]
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    _, asked = prepare(request(schema=schema), "tool")
    body = provider.body(asked)
    assert [tool["name"] for tool in body["tools"]] == ["Bash", TOOL_NAME]
    assert body["tool_choice"] == {"type": "any"}  # the client's tool, or the answer
    turns = (*asked.messages, Message("assistant", "{"), Message("user", "Fix it."))
    reasked = replace(asked, messages=turns, reasks=1, gateway_turns=2)
    assert provider.body(reasked)["messages"][-2:] == [
        {"role": "assistant", "content": "{"},
        {"role": "user", "content": "Fix it."},
    ]
    clash = {"body": {**CLIENT_BODY, "tools": [{"name": TOOL_NAME, "input_schema": {"type": "object"}}]}}
    with pytest.raises(Unsupported, match="named respond"):
        provider.body(prepare(request(schema=schema, native=clash), "tool")[1])


async def test_the_clients_beta_header_follows_the_configured_one(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    fake.script(Script(text="ok"))
    chunks = await collect(provider, request())
    assert "".join(chunk.text for chunk in chunks) == "ok"
    [received] = fake.requests
    assert received.headers["anthropic-beta"] == "configured-beta,interleaved-thinking-2025-05-14"
    assert received.body["a_future_field"] == {"kept": True} and received.body["top_k"] == 5


async def test_count_tokens_asks_anthropic(anthropic: tuple[AnthropicProvider, FakeProvider]) -> None:
    provider, fake = anthropic
    count_body = {"model": "my-workflow", "messages": [{"role": "user", "content": "Hello"}]}
    tokens = await provider.count_tokens(count_body, "claude-x", system="Rules.", beta="token-counting-2024-11-01")
    [received] = fake.requests
    assert received.path == "/v1/messages/count_tokens"
    assert received.body == {**count_body, "model": "claude-x", "system": "Rules."}
    assert received.headers["anthropic-beta"] == "configured-beta,token-counting-2024-11-01"
    assert tokens == tokens_of(received.body)


async def test_a_thinking_answer_streams_its_reasoning_and_signature_first(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    fake.script(Script(thinking="Think first.", text="Then answer."))
    chunks = await collect(provider, request())
    thinking = [piece for chunk in chunks for piece in chunk.thinking]
    assert thinking == [
        ThinkingDelta(0, text="Think"),
        ThinkingDelta(0, text=" first."),
        ThinkingDelta(0, signature=fake_signature("Think first.")),
    ]
    assert "".join(chunk.text for chunk in chunks) == "Then answer."
    assert chunks[-1].finish_reason == "stop"


def test_redacted_thinking_and_a_whole_thinking_block_are_read() -> None:
    reader = AnswerReader()
    redacted = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "redacted_thinking", "data": "b3A="},
    }
    whole = {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "thinking", "thinking": "All at once.", "signature": "c2ln"},
    }
    assert reader.read("content_block_start", redacted) == Chunk(thinking=(ThinkingDelta(0, redacted="b3A="),))
    assert reader.read("content_block_start", whole) == Chunk(
        thinking=(ThinkingDelta(1, text="All at once.", signature="c2ln"),)
    )
    signature = {"type": "signature_delta", "signature": "bW9yZQ=="}
    assert reader.read("content_block_delta", {"index": 1, "delta": signature}) == Chunk(
        thinking=(ThinkingDelta(1, signature="bW9yZQ=="),)
    )
