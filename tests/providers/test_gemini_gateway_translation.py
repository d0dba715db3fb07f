"""Through a real gateway, Gemini's calls come out of `/v1/chat/completions` in OpenAI's shape, streamed and not,
and an image Gemini cannot take fails over to the next provider before anything is sent (docs/translation.md,
"Google Gemini")."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.testing import FakeProvider, Script
from tests.conftest import StartGateway, write_config
from tests.providers.adapters import CALL_ID, assert_image_fails_over, openai_call, sse_events, tools_body

TOOLS_BODY = tools_body("required")


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_completions_answers_gemini_calls_in_openai_shape(
    start_gateway: StartGateway, tmp_path: Path, stream: bool
) -> None:
    async with FakeProvider("gemini") as fake:
        config = f"providers:\n  g: {{type: gemini, api_key: k, base_url: '{fake.base_url}'}}\n"
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        calls = (
            {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "fc-1"},
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
        )
        fake.script(Script(tool_calls=calls))
        body = {"model": "g/gemini-x", "messages": [{"role": "user", "content": "Weather?"}], "stream": stream}
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={**body, **TOOLS_BODY})
        assert response.status_code == 200, response.text
        sent = fake.requests[0].body
        assert sent.get("toolConfig") == {"functionCallingConfig": {"mode": "ANY"}}, "the tools were not forwarded"
        if not stream:
            choice = response.json()["choices"][0]
            assert choice["finish_reason"] == "tool_calls"
            message = choice["message"]
            second = message["tool_calls"][1]["id"]
            assert CALL_ID.fullmatch(second)
            assert message == {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    openai_call("fc-1", '{"city":"Paris"}'),
                    openai_call(second, '{"city":"Oslo"}'),
                ],
            }
        else:
            events = sse_events(response.text)
            deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
            calls_seen = [call for delta in deltas for call in delta.get("tool_calls", ())]
            assert calls_seen[0] == {"index": 0, **openai_call("fc-1", '{"city":"Paris"}')}
            assert calls_seen[1]["index"] == 1 and calls_seen[1]["function"]["arguments"] == '{"city":"Oslo"}'
            assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "tool_calls"


async def test_an_image_link_gemini_cannot_take_fails_over_to_the_next_provider(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    await assert_image_fails_over(
        start_gateway, tmp_path, "gemini", "gemini-x", "https://example.com/cat.png", options="api_key: k, "
    )
