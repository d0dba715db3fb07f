"""The conversation fields of every chat-shaped API: a mistake is refused naming the field, before anything runs (a
422 on `/v1/ai*`; on `/v1/chat/completions` a 400 in OpenAI's error shape whose `param` is the field)."""

from __future__ import annotations

import pytest

from tests.conftest import RunningGateway

HI = {"role": "user", "content": "hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
BAD_DATA = "data:image/png;base64,%%%"
CASES = [
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": BAD_DATA}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [HI, {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}]}, "messages[1].tool_call_id"),
    ({"messages": [HI, {"role": "tool", "content": "sunny"}]}, "messages[1]"),
    ({"messages": [HI, {"role": "user", "content": "x", "tool_calls": [CALL]}]}, "messages[1]"),
    ({"messages": [HI], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 7}}}]},
     "tools[0].function.parameters"),
    ({"messages": [HI], "tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name"),
    ({"messages": [HI], "tools": [TOOL, TOOL]}, "tools"),
    ({"messages": [HI], "tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "other"}}},
     "tool_choice"),
    ({"messages": [HI], "tool_choice": "required"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "field"), CASES)
async def test_a_conversation_mistake_is_refused_naming_the_field(
    gw: RunningGateway, fields: dict[str, object], field: str
) -> None:
    async with gw.client() as client:
        chat = await client.post("/v1/chat/completions", json={"model": "demo", **fields})
        ai = await client.post("/v1/ai/async", json={"workflow": "demo", **fields})
    assert chat.status_code == 400, chat.text
    error = chat.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_request", field)
    assert ai.status_code == 422, ai.text
    for response in (chat, ai):
        assert response.json()["error"]["message"].startswith(field + ": "), response.json()["error"]["message"]


async def test_a_valid_tool_conversation_is_accepted_and_kept_as_sent(gw: RunningGateway) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "weather here?"}, image]},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    ]
    async with gw.client() as client:
        accepted = await client.post(
            "/v1/ai/async", json={"workflow": "demo", "messages": messages, "tools": [TOOL], "tool_choice": "auto"}
        )
        assert accepted.status_code == 202, accepted.text
        record = await gw.gateway.store.get_request(accepted.json()["channel_id"])
    assert record is not None
    assert record.body["messages"][1] == {"role": "assistant", "tool_calls": [CALL]}  # unset fields left out
    assert record.body["messages"][0]["content"][1] == image and record.body["tools"] == [TOOL]
