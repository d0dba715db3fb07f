"""Through a real gateway, Anthropic's calls come out of `/v1/chat/completions` in OpenAI's shape, streamed and not,
and an image type Anthropic cannot take fails over to the next provider before anything is sent (docs/translation.md,
"Anthropic Messages")."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.testing import FakeProvider, Script
from tests.conftest import StartGateway, write_config
from tests.providers.adapters import PIXEL, assert_image_fails_over, openai_call, sse_events, tools_body

TOOLS_BODY = tools_body("required")
GATEWAY_CALLS = (
    {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_p"},
    {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "toolu_o"},
)


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_completions_answers_anthropic_calls_in_openai_shape(
    start_gateway: StartGateway, tmp_path: Path, stream: bool
) -> None:
    async with FakeProvider("anthropic") as fake:
        config = f"providers:\n  a: {{type: anthropic, api_key: k, base_url: '{fake.base_url}'}}\n"
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        fake.script(Script(tool_calls=GATEWAY_CALLS, argument_chunks=2))
        body = {"model": "a/claude-x", "messages": [{"role": "user", "content": "Weather?"}], "stream": stream}
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={**body, **TOOLS_BODY})
        assert response.status_code == 200, response.text
        sent = fake.requests[0].body
        assert sent["tools"] == [
            {"name": "get_weather", "input_schema": TOOLS_BODY["tools"][0]["function"]["parameters"]}
        ]
        assert sent["tool_choice"] == {"type": "any"}
    if not stream:
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"] == {
            "role": "assistant",
            "content": None,
            "tool_calls": [openai_call("toolu_p", '{"city":"Paris"}'), openai_call("toolu_o", '{"city":"Oslo"}')],
        }
        return
    events = sse_events(response.text)
    choices = [(e["choices"][0]["delta"], e["choices"][0]["finish_reason"]) for e in events if e["choices"]]
    assert choices == [
        ({"role": "assistant", "content": ""}, None),
        ({"tool_calls": [{"index": 0, **openai_call("toolu_p", "")}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, None),
        ({"tool_calls": [{"index": 1, **openai_call("toolu_o", "")}]}, None),
        ({"tool_calls": [{"index": 1, "function": {"arguments": '{"city"'}}]}, None),
        ({"tool_calls": [{"index": 1, "function": {"arguments": ':"Oslo"}'}}]}, None),
        ({}, "tool_calls"),
    ]
    assert response.text.rstrip().endswith("data: [DONE]")


async def test_an_image_type_anthropic_cannot_take_fails_over_to_the_next_provider(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    await assert_image_fails_over(
        start_gateway, tmp_path, "anthropic", "claude-x", f"data:image/bmp;base64,{PIXEL}", options="api_key: k, "
    )
