"""OpenTelemetry tracing (optional: `pip install 'sluice[otel]'`), built from channel events like the metrics.

Each request becomes a `sluice.request` span (first event seen here → terminal event) with one `sluice.attempt`
child per provider attempt (attributes provider, model, attempt; a `first_token` event; error status when it
failed). Status changes, failovers, resets and webhook progress are span events.

Tracing is on when OpenTelemetry is installed and either a tracer provider is configured (e.g. by
`opentelemetry-instrument`) or `OTEL_EXPORTER_OTLP_ENDPOINT` is set, in which case Sluice sets up the SDK with the
OTLP/HTTP exporter itself. Otherwise nothing is imported and nothing is observed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.events import (
    AttemptEvent,
    DeltaEvent,
    ErrorEvent,
    Event,
    FailoverEvent,
    ResetEvent,
    ResponseEvent,
    StatusEvent,
    WebhookEvent,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

MAX_TRACKED = 20_000


@dataclass
class _Spans:
    request: Span
    attempt: Span | None = None
    first_token: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class EventTracer:
    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import trace

        self._trace = trace
        self.tracer = tracer
        self._open: dict[str, _Spans] = {}

    def observe(self, channel_id: str, event: Event) -> None:
        moment = time.time_ns()
        spans = self._open.get(channel_id)
        if spans is None:
            while len(self._open) >= MAX_TRACKED:
                self._open.pop(next(iter(self._open))).request.end(end_time=moment)
            request = self.tracer.start_span(
                "sluice.request", start_time=moment, attributes={"sluice.request_id": channel_id}
            )
            spans = self._open[channel_id] = _Spans(request=request)
        match event:
            case StatusEvent():
                spans.request.add_event("status", {"status": event.status}, timestamp=moment)
            case AttemptEvent():
                self._end_attempt(spans, moment)
                context = self._trace.set_span_in_context(spans.request)
                spans.attempt = self.tracer.start_span(
                    "sluice.attempt",
                    context=context,
                    start_time=moment,
                    attributes={
                        "sluice.provider": event.provider,
                        "sluice.model": event.model,
                        "sluice.attempt": event.attempt,
                    },
                )
                spans.first_token = False
            case DeltaEvent() if not spans.first_token and spans.attempt is not None:
                spans.first_token = True
                spans.attempt.add_event("first_token", timestamp=moment)
            case ResetEvent():
                self._end_attempt(spans, moment, error=event.reason)
                spans.request.add_event("reset", {"reason": event.reason}, timestamp=moment)
            case FailoverEvent():
                self._end_attempt(spans, moment, error=event.error)
                spans.request.add_event(
                    "failover", {"from": event.from_, "to": event.to, "error": event.error}, timestamp=moment
                )
            case WebhookEvent():
                spans.request.add_event("webhook", {"state": event.state, "attempt": event.attempt}, timestamp=moment)
            case ResponseEvent():
                self._end_attempt(spans, moment)
                for name in ("workflow", "provider", "model"):
                    if isinstance(event.meta.get(name), str):
                        spans.request.set_attribute(f"sluice.{name}", event.meta[name])
                self._finish(channel_id, moment)
            case ErrorEvent():
                self._end_attempt(spans, moment, error=event.message)
                spans.request.set_status(self._status(error=f"{event.code}: {event.message}"))
                self._finish(channel_id, moment)

    def _status(self, error: str | None = None) -> Any:
        from opentelemetry.trace import Status, StatusCode

        return Status(StatusCode.ERROR, error) if error else Status(StatusCode.OK)

    def _end_attempt(self, spans: _Spans, moment: int, error: str | None = None) -> None:
        if spans.attempt is None:
            return
        spans.attempt.set_status(self._status(error))
        spans.attempt.end(end_time=moment)
        spans.attempt = None

    def _finish(self, channel_id: str, moment: int) -> None:
        self._open.pop(channel_id).request.end(end_time=moment)


def tracing_observers(extra: dict[str, Any], environ: Any = None) -> list[EventTracer]:
    """[EventTracer] when tracing is wanted (see the module doc), else [] without importing OpenTelemetry."""
    environ = os.environ if environ is None else environ
    provider = extra.get("tracer_provider")  # tests and embedding applications pass their own
    if provider is None:
        try:
            from opentelemetry import trace
        except ImportError:
            return []
        provider = trace.get_tracer_provider()
        if type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
            if not environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
                return []
            provider = _otlp_provider()
            trace.set_tracer_provider(provider)
    return [EventTracer(provider.get_tracer("sluice"))]


def _otlp_provider() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "sluice")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
