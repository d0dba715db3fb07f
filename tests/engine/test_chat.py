"""Reading an accepted body (Chat Completions' JSON) into the canonical conversation, once."""

from __future__ import annotations

from sluice.engine.chat import ChatInput
from sluice.providers.messages import ImagePart, Message, ResponseFormat, TextPart, Tool, ToolCall, ToolChoice

IMAGE = {"type": "image_url", "image_url": {"url": "https://x/c.png", "detail": "low"}}
OBJECT = {"type": "object"}


def test_every_conversation_field_is_read() -> None:
    body = {
        "workflow": "w",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is this?"}, IMAGE]},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                  "function": {"name": "look", "arguments": '{"q":1}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        ],
        "tools": [{"type": "function", "function": {"name": "look", "description": "d", "parameters": OBJECT}}],
        "tool_choice": {"type": "function", "function": {"name": "look"}},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
        "temperature": 0.5, "stop": ["\n"], "seed": 7, "metadata": {"kept": "not a parameter"},
        "passthrough": {"logprobs": True},
    }  # fmt: skip
    chat = ChatInput.from_body(body)
    assert chat.messages == (
        Message(role="system", content="be brief"),
        Message(role="user", content=(TextPart("what is this?"), ImagePart("https://x/c.png", "low"))),
        Message(role="assistant", tool_calls=(ToolCall("c1", "look", '{"q":1}'),)),
        Message(role="tool", content="a cat", tool_call_id="c1"),
    )
    assert chat.tools == (Tool(name="look", description="d", parameters={"type": "object"}),)
    assert chat.tool_choice == ToolChoice(mode="tool", name="look") and chat.parallel_tool_calls is False
    assert chat.response_format == ResponseFormat(type="json_object")
    assert chat.params == {"temperature": 0.5, "stop": ["\n"], "seed": 7} and chat.passthrough == {"logprobs": True}
    assert chat.messages[1].text == "what is this?" and chat.messages[1].images == (
        ImagePart("https://x/c.png", "low"),
    )


def test_a_plain_body_stays_plain() -> None:
    chat = ChatInput.from_body({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "none"})
    assert chat.messages == (Message(role="user", content="hi"),) and chat.tools == ()
    assert chat.tool_choice == ToolChoice(mode="none") and chat.response_format is None and chat.passthrough == {}
    assert ImagePart("data:image/png;base64,AAAA").inline == ("image/png", "AAAA")
    assert ImagePart("https://x/y.png").inline is None
