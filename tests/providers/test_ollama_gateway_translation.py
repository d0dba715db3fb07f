"""Through a real gateway, Ollama's calls come out of `/v1/chat/completions` in OpenAI's shape, streamed and not,
and an image Ollama cannot take fails over to the next provider before anything is sent (docs/translation.md,
"Ollama")."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.testing import FakeProvider, Script
from tests.conftest import StartGateway, write_config
from tests.providers.adapters import logged, openai_call, sse_events, tools_body

TOOLS_BODY = tools_body("auto", description="The weather in a city.")  # Ollama takes these tools as they are


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_completions_answers_ollama_calls_in_openai_shape(
    start_gateway: StartGateway, tmp_path: Path, stream: bool
) -> None:
    async with FakeProvider("ollama") as fake:
        config = f"providers:\n  o: {{type: ollama, base_url: '{fake.base_url}'}}\n"
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        calls = (
            {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_p"},
            {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_o"},
        )
        fake.script(Script(tool_calls=calls))
        body = {"model": "o/qwen3", "messages": [{"role": "user", "content": "Weather?"}], "stream": stream}
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={**body, **TOOLS_BODY})
        assert response.status_code == 200, response.text
        assert fake.requests[0].body.get("tools") == TOOLS_BODY["tools"], "the tools were not forwarded"
        if not stream:
            choice = response.json()["choices"][0]
            assert choice["finish_reason"] == "tool_calls"
            assert choice["message"] == {
                "role": "assistant",
                "content": None,
                "tool_calls": [openai_call("call_p", '{"city":"Paris"}'), openai_call("call_o", '{"city":"Oslo"}')],
            }
        else:
            events = sse_events(response.text)
            choices = [e["choices"][0] for e in events if e["choices"]]
            seen = [call for c in choices for call in c["delta"].get("tool_calls", ())]
            assert seen == [
                {"index": 0, **openai_call("call_p", '{"city":"Paris"}')},
                {"index": 1, **openai_call("call_o", '{"city":"Oslo"}')},
            ]
            assert choices[-1]["finish_reason"] == "tool_calls"


async def test_an_image_link_ollama_cannot_take_fails_over_to_the_next_provider(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    async with FakeProvider("ollama") as local, FakeProvider("openai", text="A cat.") as backup:
        config = f"""
providers:
  local: {{type: ollama, base_url: "{local.base_url}"}}
  backup: {{type: openai, api_key: k, base_url: "{backup.base_url}"}}
workflows:
  vision:
    chain:
      - {{provider: local, model: llava}}
      - {{provider: backup, model: gpt-x}}
"""
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        messages = [{"role": "user", "content": [{"type": "text", "text": "What is it?"}, image]}]
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={"model": "vision", "messages": messages})
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"] == "A cat."
            record = await logged(client, response.headers["x-request-id"])
        assert local.requests == []  # refused before anything was sent
        attempts = [(a["provider"], a["status"], a["error_code"]) for a in record["attempts"]]
        assert attempts == [("local", "failed", "unsupported_by_provider"), ("backup", "succeeded", None)]
