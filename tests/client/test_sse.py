"""The SSE decoder, fed lines the way the gateway writes them."""

from sluice.client._sse import decode_lines


def test_events_heartbeats_and_retry_lines() -> None:
    lines = [
        "retry: 1000",
        "",
        "id: 1",
        'data: {"seq":1,"type":"status","ts":"t","status":"queued"}',
        "",
        ": heartbeat",
        "",
        "id: 2",
        'data: {"seq":2,"type":"delta",',
        'data: "ts":"t","text":"Hi"}',
        "",
    ]
    events = list(decode_lines(iter(lines)))
    assert [(e.seq, e.type) for e in events] == [(1, "status"), (2, "delta")]
    assert events[0]["status"] == "queued"
    assert events[1].text == "Hi"
