"""Tools on Sluice's own API: `/v1/ai/async` and `/v1/ai` take the same `tools`, `tool_choice`, image parts and
tool-result messages as chat completions; the browser sees `tool_call` events as the call streams, and the terminal
`response` carries the assistant message with its `tool_calls` (docs/architecture.md, "tool_call")."""

from __future__ import annotations

import orjson

from tests.conftest import RunningGateway, collect_ws, events_only

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def ask(text: str, **extra: object) -> dict[str, object]:
    return {"workflow": "demo", "messages": [{"role": "user", "content": text}], "tools": [WEATHER], **extra}


async def test_async_with_tools_streams_the_call_and_ends_with_it(gw: RunningGateway) -> None:
    async with gw.client() as client:
        accepted = await client.post("/v1/ai/async", json=ask("Weather in Paris?", tool_choice="required"))
        assert accepted.status_code == 202, accepted.text
        events = events_only(await collect_ws(accepted.json()["websocket_url"]))
        record = (await client.get(f"/v1/requests/{accepted.json()['channel_id']}")).json()
    pieces = [e for e in events if e["type"] == "tool_call"]
    assert pieces[0]["index"] == 0 and pieces[0]["name"] == "get_weather" and pieces[0]["id"]
    assert all(p["id"] is None and p["name"] is None for p in pieces[1:])
    streamed = "".join(p["arguments"] for p in pieces)
    terminal = events[-1]
    assert terminal["type"] == "response"
    assert [e["type"] for e in events].count("response") == 1
    assert terminal["data"]["tool_calls"] == [
        {"id": pieces[0]["id"], "type": "function", "function": {"name": "get_weather", "arguments": streamed}}
    ]
    assert isinstance(orjson.loads(streamed)["city"], str)  # the arguments are a value of the tool's schema
    assert terminal["meta"]["finish_reason"] == "tool_calls"
    assert record["status"] == "completed" and record["data"]["tool_calls"] == terminal["data"]["tool_calls"]


async def test_sync_takes_the_tool_result_turn_and_the_workflow_schema_shapes_the_answer(gw: RunningGateway) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    body = ask("Weather in Paris?")
    body["messages"] = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature_c": 21}'},
    ]
    async with gw.client() as client:
        response = await client.post("/v1/ai", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["meta"]["finish_reason"] == "stop"
    assert "reply" in result["data"]  # the demo workflow's schema still wins on /v1/ai
    assert "tool_calls" not in result["data"]


async def test_a_tool_message_that_answers_no_call_is_refused_naming_it(gw: RunningGateway) -> None:
    body = ask("hi")
    body["messages"] = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "call_9", "content": "{}"},
    ]
    async with gw.client() as client:
        response = await client.post("/v1/ai/async", json=body)
    assert response.status_code == 422
    assert "messages[1]" in response.json()["error"]["message"] and "call_9" in response.json()["error"]["message"]


async def test_an_image_part_on_async_is_accepted_and_a_bad_one_named(gw: RunningGateway) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,not base64!"}}
    body = {"workflow": "demo", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}]}
    async with gw.client() as client:
        refused = await client.post("/v1/ai/async", json=body)
        image["image_url"] = {"url": "https://example.com/cat.png"}
        accepted = await client.post("/v1/ai/async", json=body)
    assert refused.status_code == 422 and "messages[0].content[1].image_url" in refused.json()["error"]["message"]
    assert accepted.status_code == 202, accepted.text
