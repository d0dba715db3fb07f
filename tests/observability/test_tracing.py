"""OpenTelemetry (optional extra): a request becomes a span with one child span per provider attempt."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from sluice.observability.tracing import tracing_observers
from tests.conftest import MASTER_KEY, StartGateway, chat_body

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def test_no_tracing_unless_configured() -> None:
    assert tracing_observers({}, environ={}) == []


async def test_request_and_attempt_spans(start_gateway: StartGateway) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gw = await start_gateway(extra={"tracer_provider": provider})
    async with gw.client() as client:
        down = {"name": "down", "type": "openai-compatible", "options": {"base_url": "http://127.0.0.1:9/v1"}}
        assert (await client.post("/v1/admin/providers", headers=ADMIN, json=down)).status_code == 201
        chain = [{"provider": "down", "model": "m", "retries": 0}, {"provider": "simulated", "model": "sim-1"}]
        created = await client.post("/v1/admin/workflows", headers=ADMIN, json={"name": "traced", "chain": chain})
        assert created.status_code == 201
        result = await client.post("/v1/ai", json=chat_body("trace me", workflow="traced"))
        assert result.status_code == 200
    request_id = result.json()["request_id"]
    spans = exporter.get_finished_spans()
    request = next(s for s in spans if s.name == "sluice.request" and s.attributes["sluice.request_id"] == request_id)
    attempts = sorted(
        (
            s
            for s in spans
            if s.name == "sluice.attempt" and s.parent is not None and s.parent.span_id == request.context.span_id
        ),
        key=lambda s: s.start_time,
    )
    assert [a.attributes["sluice.provider"] for a in attempts] == ["down", "simulated"]
    assert attempts[0].status.status_code == StatusCode.ERROR
    assert attempts[1].status.status_code == StatusCode.OK
    assert [e.name for e in attempts[1].events] == ["first_token"]
    assert request.attributes["sluice.workflow"] == "traced" and request.attributes["sluice.provider"] == "simulated"
    assert "failover" in [e.name for e in request.events]
    assert request.start_time <= attempts[0].start_time and attempts[1].end_time <= request.end_time
