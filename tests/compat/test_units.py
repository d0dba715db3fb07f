"""The pure parts of the compat layer, without sockets: the Phoenix wire format, the event → AIResponse mapping,
customer_data and ModelRiver's meta."""

from __future__ import annotations

import base64

import orjson
import pytest

from sluice.compat import phoenix_wire as wire
from sluice.compat.airesponse import ResponseMapper
from sluice.compat.customer import customer_data
from sluice.compat.envelope import modelriver_meta, text_of
from sluice.events import WireEvent


def test_frames_round_trip_and_refs_are_echoed_as_strings() -> None:
    frame = wire.decode('[1, 2, "ai_response:x", "phx_join", {}]')
    assert (frame.join_ref, frame.ref) == ("1", "2")
    assert wire.reply(frame, "ok").encode() == '["1","2","ai_response:x","phx_reply",{"status":"ok","response":{}}]'
    assert wire.push("1", "t", "response", {"a": 1}).encode() == '["1",null,"t","response",{"a":1}]'
    for bad in ("nope", "{}", "[1,2,3]", '[null, null, 1, "e", {}]'):
        with pytest.raises(wire.ProtocolError):
            wire.decode(bad)


def test_token_from_phoenix_auth_subprotocol() -> None:
    token = "eyJ.abc-_.def"
    encoded = base64.b64encode(token.encode()).decode().rstrip("=")  # phoenix.js: btoa(token) without padding
    assert wire.token_from_subprotocols(["phoenix", wire.AUTH_TOKEN_PREFIX + encoded]) == token
    assert wire.token_from_subprotocols(["phoenix"]) is None


def test_customer_data_from_echo_fields_and_extra_fields() -> None:
    body = {
        "workflow": "w",
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"segment": "pro"},
        "user_id": "u1",
        "temperature": 0.2,
    }
    assert customer_data(body, ["metadata.segment", "messages.0.content", "metadata.missing", "messages.5"]) == {
        "user_id": "u1",
        "metadata.segment": "pro",
        "messages.0.content": "hi",
    }
    assert customer_data(body) == {"user_id": "u1"}


def test_modelriver_meta_names() -> None:
    meta = modelriver_meta(
        {
            "workflow": "w",
            "provider": "b",
            "model": "m2",
            "duration_ms": 5,
            "usage": {"input_tokens": 3, "output_tokens": 4},
            "attempts": [
                {"provider": "a", "model": "m1", "status": "failed", "reason": "503"},
                {"provider": "b", "model": "m2", "status": "succeeded"},
            ],
        },
        status="success",
    )
    assert (meta["requested_provider"], meta["requested_model"]) == ("a", "m1")
    assert (meta["used_provider"], meta["used_model"]) == ("b", "m2")
    assert meta["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert meta["attempts"] == [
        {"provider": "a", "model": "m1", "status": "failed", "reason": "503"},
        {"provider": "b", "model": "m2", "status": "success"},
    ]
    assert text_of({"content": "plain"}) == "plain" and text_of({"reply": "x"}) == '{"reply":"x"}'
    assert text_of({"content": "plain", "thinking": [{"type": "thinking", "thinking": "hm"}]}) == "plain"


def _wire(event: dict) -> WireEvent:
    """A channel event as a subscriber reads it from the broker."""
    return WireEvent(event["seq"], event["type"], orjson.dumps(event).decode())


def _events(*events: dict) -> list[WireEvent]:
    return [_wire({"seq": i + 1, **event}) for i, event in enumerate(events)]


def test_mapper_plain_request() -> None:
    mapper = ResponseMapper(channel_id="c", workflow="w", customer_data={"k": 1})
    pushes = [
        p
        for e in _events(
            {"type": "status", "status": "running"},
            {"type": "attempt", "provider": "p", "model": "m", "attempt": 1},
            {"type": "delta", "text": '{"a"'},
            {"type": "reset", "reason": "failover"},
            {"type": "delta", "text": "{}"},
            {"type": "response", "data": {"a": 1}, "meta": {"provider": "p", "model": "m"}},
        )
        for p in mapper.feed(e)
    ]
    assert [name for name, _ in pushes] == ["progress", "progress", "chunk", "reset", "chunk", "response"]
    final = pushes[-1][1]
    assert final["status"] == "success" and final["seq"] == 6 and final["customer_data"] == {"k": 1}
    assert final["content"] == '{"a":1}' and final["model"] == "m"


def test_mapper_event_driven_request() -> None:
    mapper = ResponseMapper(channel_id="c", workflow="w", event_name="new_chat")
    names = []
    for event in _events(
        {"type": "status", "status": "awaiting_callback"},
        {"type": "webhook", "state": "sent", "attempt": 1},
        {"type": "webhook", "state": "failed", "attempt": 1, "status_code": 500},
        {"type": "webhook", "state": "sent", "attempt": 2},
    ):
        if event.seq == 1:
            mapper.ai_result({"reply": "ai"}, {"duration_ms": 12})
        names += [(name, payload.get("status")) for name, payload in mapper.feed(event)]
    assert names.count(("response", "ai_generated")) == 1  # once, however many delivery attempts
    [(_, done)] = mapper.feed(
        _wire(
            {
                "seq": 9,
                "type": "response",
                "data": {"reply": "enriched"},
                "meta": {"task_id": "t", "callback_metadata": {"x": 1}, "callback": {}},
            }
        )
    )
    assert done["status"] == "completed" and done["task_id"] == "t" and done["callback_metadata"] == {"x": 1}
    assert done["ai_response"]["data"] == {"reply": "ai"} and done["event_name"] == "new_chat"
    # a late join that only sees the terminal event (rebuilt from the store) still says `completed`
    late = ResponseMapper(channel_id="c", workflow="w")
    assert (
        late.feed(_wire({"seq": 9, "type": "response", "data": {}, "meta": {"callback": {}}}))[0][1]["status"]
        == "completed"
    )
    [(_, failed)] = late.feed(_wire({"seq": 10, "type": "error", "code": "x", "message": "boom"}))
    assert failed["status"] == "error" and failed["error"] == {"message": "boom", "details": {"code": "x"}}
