"""`/v1/chat/completions` driven by the official `openai` package, unchanged, against the real gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import orjson
import pytest

from sluice.testing import FakeProvider, Script
from tests.conftest import RunningGateway, StartGateway, write_config

FAKE_TEXT = "Claude-shaped answer streamed through the OpenAI face."
BACKUP_TEXT = "The backup's answer."


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeProvider, FakeProvider]]:
    async with FakeProvider("anthropic", text=FAKE_TEXT) as claude, FakeProvider("gemini", text=BACKUP_TEXT) as gem:
        yield claude, gem


@pytest.fixture
async def gateway(
    start_gateway: StartGateway, tmp_path: Path, fakes: tuple[FakeProvider, FakeProvider]
) -> RunningGateway:
    claude, gem = fakes
    config = write_config(
        tmp_path,
        f"""
providers:
  claude: {{type: anthropic, api_key: k, base_url: "{claude.base_url}"}}
  gem: {{type: gemini, api_key: k, base_url: "{gem.base_url}"}}
workflows:
  chat:
    chain:
      - {{provider: claude, model: claude-x, retries: 0, timeouts: {{first_token: 0.5, idle: 0.5}}}}
      - {{provider: gem, model: gemini-y}}
""",
    )
    return await start_gateway(config_path=config)


def client(gw: RunningGateway, api_key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=api_key or gw.api_key, max_retries=0, timeout=10)


async def test_not_streamed_provider_model(gateway: RunningGateway, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    async with client(gateway) as sdk:
        completion = await sdk.chat.completions.create(
            model="claude/claude-x",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            max_tokens=50,
        )
    assert completion.choices[0].message.content == FAKE_TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    sent = fakes[0].requests[0]
    assert sent.body["model"] == "claude-x" and sent.body["system"] == "Be brief." and sent.body["max_tokens"] == 50


async def test_streamed_with_usage(gateway: RunningGateway) -> None:
    async with client(gateway) as sdk:
        stream = await sdk.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == FAKE_TEXT
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3  # really streamed
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0


async def test_failover_before_first_token_is_invisible(
    gateway: RunningGateway, fakes: tuple[FakeProvider, FakeProvider]
) -> None:
    fakes[0].script(Script(status=529), Script(status=529))
    async with client(gateway) as sdk:
        completion = await sdk.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        stream = await sdk.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert completion.choices[0].message.content == BACKUP_TEXT
    assert streamed == BACKUP_TEXT


async def test_failure_after_streamed_text_raises_in_the_stream(
    gateway: RunningGateway, fakes: tuple[FakeProvider, FakeProvider]
) -> None:
    fakes[0].script(Script(cut_after=3))
    async with client(gateway) as sdk:
        stream = await sdk.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        received = []
        with pytest.raises(openai.APIError, match="failed after streaming"):
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
    assert FAKE_TEXT.startswith("".join(received)) and received


async def test_errors_are_openai_errors(gateway: RunningGateway, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    messages = [{"role": "user", "content": "hi"}]
    async with client(gateway) as sdk:
        with pytest.raises(openai.NotFoundError, match="neither a workflow"):
            await sdk.chat.completions.create(model="nope", messages=messages)  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError, match="tools are not supported"):
            await sdk.chat.completions.create(
                model="chat",
                messages=messages,  # type: ignore[arg-type]
                tools=[{"type": "function", "function": {"name": "f"}}],
            )
        fakes[0].script(Script(status=400))
        with pytest.raises(openai.BadRequestError, match="HTTP 400"):
            await sdk.chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
    assert fakes[1].requests == []  # a 400 fails fast: the backup was never asked
    async with client(gateway, api_key="sk-wrong") as sdk:
        with pytest.raises(openai.AuthenticationError):
            await sdk.chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]


async def test_schema_workflow_answers_json_text(gateway: RunningGateway) -> None:
    async with client(gateway) as sdk:
        completion = await sdk.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "I love it"}]
        )
    data = orjson.loads(completion.choices[0].message.content or "")
    assert data["sentiment"] == "positive"


async def test_a_completion_is_in_the_request_log_once_finished(gateway: RunningGateway) -> None:
    # A pass-through (sluice/passthrough.py): not recorded before its answer, written to the log just after it.
    async with gateway.client() as http:
        answer = await http.post(
            "/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert answer.status_code == 200, answer.text
        request_id = answer.json()["id"].removeprefix("chatcmpl-")
        for _ in range(250):
            found = await http.get(f"/v1/requests/{request_id}")
            if found.status_code != 404:
                break
            await asyncio.sleep(0.02)
        assert found.status_code == 200, found.text
        record = found.json()
        assert record["status"] == "completed" and record["data"] == {"content": FAKE_TEXT}
        assert [a["status"] for a in record["attempts"]] == ["succeeded"]
        assert record["completed_at"] is not None


async def test_a_non_streamed_completion_is_non_streamed_upstream(start_gateway: StartGateway, tmp_path: Path) -> None:
    # Nobody reads the answer before it is whole, so the OpenAI-shaped provider is asked for one JSON answer; the
    # first-token deadline then cannot apply (the first text is the whole answer): only the total one does.
    async with FakeProvider("openai", text=FAKE_TEXT) as upstream:
        config = write_config(
            tmp_path,
            f"""
providers:
  up: {{type: openai-compatible, base_url: "{upstream.base_url}/v1"}}
workflows:
  chat:
    chain:
      - {{provider: up, model: m, retries: 0, timeouts: {{first_token: 0.3, total: 10}}}}
""",
        )
        gw = await start_gateway(config_path=config)
        messages = [{"role": "user", "content": "hi"}]
        async with client(gw) as sdk:
            upstream.script(Script(first_byte_delay=0.6))
            whole = await sdk.chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
            assert whole.choices[0].message.content == FAKE_TEXT and whole.usage and whole.usage.completion_tokens
            assert upstream.requests[-1].body["stream"] is False

            upstream.script(Script(first_byte_delay=0.6))
            stream = await sdk.chat.completions.create(
                model="chat",
                messages=messages,  # type: ignore[arg-type]
                stream=True,
            )
            with pytest.raises(openai.APIError, match=r"no first token within 0\.3s"):
                async for _ in stream:
                    pass
            assert upstream.requests[-1].body["stream"] is True
