"""A Claude-Code-shaped request through `/v1/messages`: nothing in it is dropped on its way to an Anthropic provider
(system and tool blocks with `cache_control`, `thinking`, `metadata.user_id`, unknown fields, the `anthropic-beta`
header), its thinking blocks come back with their signatures and go upstream again on the next turn, and what only
Anthropic can take fails over from a provider of another type."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from sluice.store import RequestRecord
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols.base import fake_signature
from tests.conftest import RunningGateway, StartGateway, write_config

BETA = "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
EPHEMERAL = {"type": "ephemeral"}
BASH = {
    "name": "Bash",
    "description": "Executes a given bash command in a persistent shell session.",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
        "required": ["command"],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    },
}
CLAUDE_CODE: dict[str, Any] = {
    "model": "claude",
    "max_tokens": 32000,
    "temperature": 1,
    "stream": True,
    "system": [
        {
            "type": "text",
            "text": "You are Claude Code, Anthropic's official CLI for Claude.",
            "cache_control": EPHEMERAL,
        },
        {"type": "text", "text": "You are an interactive CLI tool that helps users.", "cache_control": EPHEMERAL},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>Be brief.</system-reminder>"},
                {"type": "text", "text": "List the files.", "cache_control": EPHEMERAL},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
                {"type": "text", "text": "Listing."},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "sluice"}]},
                {"type": "text", "text": "Which one is the package?", "cache_control": EPHEMERAL},
            ],
        },
    ],
    "tools": [{**BASH, "cache_control": EPHEMERAL}],
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "metadata": {"user_id": "user_2f1c_account_9e0a_session_77b3"},
    "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},  # a field Sluice has no model for
}
DOCUMENT = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "A plain document."}}


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeProvider]]:
    async with FakeProvider("openai") as op, FakeProvider("anthropic") as an:
        yield {"openai": op, "anthropic": an}


@pytest.fixture
async def gateway(start_gateway: StartGateway, tmp_path: Path, fakes: dict[str, FakeProvider]) -> RunningGateway:
    config = f"""
providers:
  claude-api: {{type: anthropic, api_key: upstream-key, base_url: '{fakes["anthropic"].base_url}'}}
  gpt: {{type: openai, api_key: upstream-key, base_url: '{fakes["openai"].base_url}'}}
workflows:
  claude:
    chain:
      - {{provider: claude-api, model: claude-sonnet-x, retries: 0}}
  gpt-then-claude:
    chain:
      - {{provider: gpt, model: gpt-x, retries: 0}}
      - {{provider: claude-api, model: claude-sonnet-x, retries: 0}}
"""
    return await start_gateway(config_path=write_config(tmp_path, config))


async def logged(gateway: RunningGateway, request_id: str) -> RequestRecord:
    """The request once the write-behind request log has written it."""
    async with asyncio.timeout(5):
        while (record := await gateway.gateway.store.get_request(request_id)) is None:
            await asyncio.sleep(0.02)
    return record


async def post(gateway: RunningGateway, body: dict[str, Any]) -> httpx.Response:
    headers = {
        "x-api-key": gateway.api_key,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": BETA,
        "user-agent": "claude-cli/2.0.0 (external, cli)",
    }
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        return await client.post("/v1/messages?beta=true", json=body, headers=headers)


async def test_nothing_in_a_claude_code_request_is_dropped_on_its_way_to_anthropic(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    fakes["anthropic"].script(Script(thinking="The repo has one entry.", text="It is sluice."))
    response = await post(gateway, CLAUDE_CODE)
    assert response.status_code == 200
    [received] = fakes["anthropic"].requests
    assert received.body == {**CLAUDE_CODE, "model": "claude-sonnet-x"}  # the client's body as it came
    assert received.headers["anthropic-beta"] == BETA
    assert received.headers["x-api-key"] == "upstream-key"
    assert gateway.api_key not in orjson.dumps(received.headers).decode()  # the client's key stays at the gateway


async def test_thinking_comes_back_with_its_signature_and_goes_upstream_again(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    thought = "The user wants the package name."
    fakes["anthropic"].script(Script(thinking=thought, text="It is sluice."), Script(text="Done."))
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key=gateway.api_key, max_retries=0) as client:
        async with client.beta.messages.stream(
            model="claude",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            metadata={"user_id": "user_2f1c"},
            messages=[{"role": "user", "content": "Which one is the package?"}],
            betas=["interleaved-thinking-2025-05-14"],
        ) as stream:
            message = await stream.get_final_message()
        assert [block.type for block in message.content] == ["thinking", "text"]
        thinking = message.content[0]
        assert thinking.type == "thinking" and thinking.thinking == thought
        assert thinking.signature == fake_signature(thought)
        # Claude Code's next turn sends the blocks back as they came: the signature reaches Anthropic unchanged.
        created = await client.beta.messages.create(
            model="claude",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[
                {"role": "user", "content": "Which one is the package?"},
                {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in message.content]},  # type: ignore[misc]
                {"role": "user", "content": "Thanks."},
            ],
            betas=["interleaved-thinking-2025-05-14"],
        )
    assert created.content[0].type == "text" and created.content[0].text == "Done."
    first, again = fakes["anthropic"].requests
    assert first.body["metadata"] == {"user_id": "user_2f1c"} and first.headers["anthropic-beta"]
    assert again.body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": thought,
        "signature": fake_signature(thought),
    }


async def test_a_non_streamed_answer_has_its_thinking_block_first(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    fakes["anthropic"].script(Script(thinking="Quick one.", text="Yes."))
    response = await post(gateway, {**CLAUDE_CODE, "stream": False})
    content = response.json()["content"]
    assert content == [
        {"type": "thinking", "thinking": "Quick one.", "signature": fake_signature("Quick one.")},
        {"type": "text", "text": "Yes."},
    ]


async def test_what_only_anthropic_can_take_fails_over_from_another_provider_type(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    fakes["anthropic"].script(Script(text="A plain document indeed."))
    body = {
        "model": "gpt-then-claude",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [DOCUMENT, {"type": "text", "text": "What is this?"}]}],
    }
    response = await post(gateway, body)
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "A plain document indeed."
    assert fakes["openai"].requests == []  # it would have answered without the document
    assert fakes["anthropic"].requests[0].body["messages"][0]["content"][0] == DOCUMENT
    record = await logged(gateway, response.headers["request-id"])
    assert record.body["api"] == "anthropic.messages"
    attempts = [(a["provider"], a["status"], a.get("error_code")) for a in (record.meta or {})["attempts"]]
    assert attempts == [("gpt", "failed", "unsupported_by_provider"), ("claude-api", "succeeded", None)]


async def test_reasoning_of_an_openai_compatible_server_comes_back_as_thinking(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    fakes["openai"].script(Script(thinking="Let me see.", text="Hello."))
    body = {"model": "gpt-then-claude", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
    response = await post(gateway, body)
    assert response.json()["content"] == [
        {"type": "thinking", "thinking": "Let me see.", "signature": ""},  # nothing signed it
        {"type": "text", "text": "Hello."},
    ]
