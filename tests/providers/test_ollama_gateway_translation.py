"""Through a real gateway, Ollama's calls come out of `/v1/chat/completions` in OpenAI's shape, streamed and not,
and an image Ollama cannot take fails over to the next provider before anything is sent (docs/translation.md,
"Ollama")."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.testing import FakeProvider, Script
from tests.conftest import StartGateway, write_config
from tests.providers.adapters import assert_image_fails_over, openai_call, sse_events, tools_body

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
    await assert_image_fails_over(start_gateway, tmp_path, "ollama", "llava", "https://example.com/cat.png")
