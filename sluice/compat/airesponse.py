"""A channel's events as ModelRiver's WebSocket pushes (research/modelriver.md §2), free of I/O.

ModelRiver's client listens to one event, `response`, whose `status` says what happened:

    plain async request     → success | error                     (one push)
    event-driven (callback) → ai_generated, then completed | error  (AI done and webhook sent; then the callback)

Sluice's finer events go out as extra events the ModelRiver client ignores and Sluice's client uses: `chunk`
(`{seq, text}` per token delta), `partial` (`{seq, data}`), `reset` (drop chunks since the last attempt) and
`progress` (the status/attempt/failover/webhook event as is). Every push carries the `seq` it came from, so a client
can rejoin with `{"after": seq}` and miss nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluice.compat.envelope import modelriver_meta, text_of
from sluice.events import (
    AttemptEvent,
    DeltaEvent,
    ErrorEvent,
    PartialEvent,
    ResetEvent,
    ResponseEvent,
    StatusEvent,
    WebhookEvent,
    WireEvent,
)
from sluice.lifecycle.states import AWAITING_CALLBACK

Push = tuple[str, dict[str, Any]]  # (event name, payload)

_MESSAGES = {
    "success": "AI response ready",
    "ai_generated": "AI response generated; waiting for the backend's callback",
    "completed": "Response completed by the backend's callback",
    "error": "The request failed",
}


@dataclass
class ResponseMapper:
    """Feed it the channel's events in order (a replay, then live ones); it says what to push."""

    channel_id: str
    workflow: str
    customer_data: dict[str, Any] = field(default_factory=dict)
    event_name: str | None = None
    partial: Any = None
    provider: str | None = None
    model: str | None = None
    awaiting: bool = False  # the request entered the callback step
    ai_generated_sent: bool = False
    ai_data: Any = None
    ai_meta: dict[str, Any] | None = None

    def ai_result(self, data: Any, meta: dict[str, Any] | None) -> None:
        """The AI's own result while the request awaits its callback (the store has it; no event carries it)."""
        self.ai_data, self.ai_meta = data, meta

    def feed(self, wire: WireEvent) -> list[Push]:
        seq, event = wire.seq, wire.event
        match event:
            case DeltaEvent(text=text):
                return [("chunk", {"seq": seq, "text": text})]
            case PartialEvent(data=data):
                self.partial = data
                return [("partial", {"seq": seq, "data": data})]
            case ResetEvent(reason=reason):
                self.partial = None
                return [("reset", {"seq": seq, "reason": reason})]
            case ResponseEvent():
                return [("response", self._final(seq, event))]
            case ErrorEvent():
                return [("response", self._failed(seq, event))]
        pushes: list[Push] = [("progress", {"seq": seq, "type": event.type, "ts": event.ts, **event.payload()})]
        match event:
            case AttemptEvent(provider=provider, model=model):
                self.provider, self.model = provider, model
            case StatusEvent(status=status) if status == AWAITING_CALLBACK:
                self.awaiting = True
            case WebhookEvent(state="sent") if self.awaiting and not self.ai_generated_sent:
                self.ai_generated_sent = True
                pushes.append(("response", self._ai_generated(seq)))
        return pushes

    def _base(self, status: str, seq: Any, data: Any, meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": status,
            "channel_id": self.channel_id,
            "request_id": self.channel_id,
            "seq": seq,
            # The result as text (a structured object as its JSON): exact even for a client that joined mid-stream.
            "content": text_of(data) if data is not None else None,
            "model": meta.get("used_model") or self.model,
            "data": data,
            "meta": meta,
            "customer_data": self.customer_data,
            "event_name": self.event_name,
            "message": _MESSAGES[status],
        }

    def _ai_generated(self, seq: Any) -> dict[str, Any]:
        data = self.ai_data if self.ai_data is not None else self.partial
        meta = modelriver_meta(self.ai_meta or self._seen_meta(), status="ai_generated", workflow=self.workflow)
        payload = self._base("ai_generated", seq, data, meta)
        payload["ai_response"] = {"data": data, "meta": meta}
        payload["callback_required"] = True
        return payload

    def _final(self, seq: int, event: ResponseEvent) -> dict[str, Any]:
        sluice_meta = event.meta
        # `callback` is set by the callback step on the terminal meta (also when rebuilt from the store).
        callback_flow = self.awaiting or "callback" in sluice_meta
        status = "completed" if callback_flow else "success"
        meta = modelriver_meta(sluice_meta or self._seen_meta(), status=status, workflow=self.workflow)
        payload = self._base(status, seq, event.data, meta)
        if callback_flow:
            payload["task_id"] = sluice_meta.get("task_id")
            payload["callback_metadata"] = sluice_meta.get("callback_metadata")
            payload["enriched"] = sluice_meta.get("enriched", True)
            if self.ai_data is not None:
                payload["ai_response"] = {
                    "data": self.ai_data,
                    "meta": modelriver_meta(self.ai_meta, status="ai_generated", workflow=self.workflow),
                }
        return payload

    def _failed(self, seq: int, event: ErrorEvent) -> dict[str, Any]:
        meta = modelriver_meta(self._seen_meta(), status="error", http_status=502, workflow=self.workflow)
        payload = self._base("error", seq, None, meta)
        payload["content"] = None
        payload["error"] = {"message": event.message, "details": {"code": event.code}}
        return payload

    def _seen_meta(self) -> dict[str, Any]:
        return {"workflow": self.workflow, "provider": self.provider, "model": self.model}
