"""How a run (or the callback step, or a refusal) ended, and the one terminal event each ending is announced with.

The same `Outcome` is recorded in the store, announced on the channel and handed to delivery (`finish`), and is
rebuilt from a stored request for a subscriber whose log is no longer held (`terminal_from_store`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sluice.events import ErrorEvent, ResponseEvent, WireEvent
from sluice.lifecycle.states import CANCELLED, COMPLETED, FAILED

if TYPE_CHECKING:
    from sluice.store import RequestRecord

CANCELLED_CODE = "cancelled"  # the error code of every cancelled request's terminal event
# Why a request was cancelled (`meta.cancel_reason`), and what its terminal event says.
BY_API = "api"  # POST /v1/requests/{id}/cancel (or /v1/responses/{id}/cancel, or an SDK's cancel())
CLIENT_GONE = "client_disconnected"  # the caller of a pass-through (chat completions…) hung up before its answer
UNWATCHED = "unwatched"  # nobody followed the channel for the workflow's `cancel_when_unwatched_for`
CANCEL_MESSAGES = {
    BY_API: "the request was cancelled",
    CLIENT_GONE: "the client disconnected before the answer was complete",
    UNWATCHED: "nobody watched the request's channel for the workflow's cancel_when_unwatched_for",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # completed | failed | cancelled
    data: Any = None
    error: dict[str, str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    first_token_at: datetime | None = None
    # For the caller only, never recorded or announced: a result too large for the log (embedding vectors); the
    # recorded `data` then summarises it.
    result: Any = None

    @property
    def cost_usd(self) -> float | None:
        """What the run's attempts cost (`sluice.spend`), None for an end that ran nothing (a cancel, a refusal)."""
        cost = self.meta.get("cost_usd")
        return float(cost) if isinstance(cost, int | float) else None

    @classmethod
    def failed(cls, code: str, message: str, meta: dict[str, Any] | None = None) -> Outcome:
        return cls(status=FAILED, error={"code": code, "message": message}, meta=meta or {})

    @classmethod
    def cancelled(
        cls, reason: str, data: Any = None, workflow: str | None = None, spend: dict[str, Any] | None = None
    ) -> Outcome:
        """A request ended by a cancel (`reason`: one of `CANCEL_MESSAGES`), keeping the output it had streamed and,
        from the instance that ran it, what its attempts spent (`spend`: `sluice.spend.usage.stopped_meta`)."""
        message = CANCEL_MESSAGES.get(reason, CANCEL_MESSAGES[BY_API])
        meta = {"workflow": workflow, "cancel_reason": reason} if workflow else {"cancel_reason": reason}
        return cls(
            status=CANCELLED,
            data=data,
            error={"code": CANCELLED_CODE, "message": message},
            meta={**meta, **(spend or {})},
        )

    @classmethod
    def internal_error(cls, exc: BaseException) -> Outcome:
        """A run that crashed inside the gateway: the client learns that much, the log has the traceback."""
        return cls.failed("internal_error", f"the gateway failed: {type(exc).__name__}")

    @classmethod
    def of(cls, record: RequestRecord) -> Outcome:
        """The outcome a finished request recorded."""
        return cls(
            status=record.status,
            data=record.data,
            error=record.error,
            meta=record.meta or {},
            first_token_at=record.first_token_at,
        )

    def terminal_event(self, *, ts: str | None = None, from_store: bool = False) -> ResponseEvent | ErrorEvent:
        """`response` for a completed request, else `error`; `ts` and `from_store` for one rebuilt from the store."""
        stamp = {"ts": ts} if ts is not None else {}
        if self.status == COMPLETED:
            return ResponseEvent(data=self.data, meta=self.meta, from_store=from_store, **stamp)
        error = self.error or {"code": self.status, "message": f"the request was {self.status}"}
        return ErrorEvent(code=error["code"], message=error["message"], from_store=from_store, **stamp)


def terminal_from_store(record: RequestRecord) -> WireEvent:
    """A finished request's terminal event rebuilt from the store, marked `from_store` (its log is no longer held).

    It keeps its number when it was announced; one never announced (the gateway died between recording and
    announcing) gets a number past any the run could have used, so numbers only move forward."""
    completed = (record.completed_at or record.created_at).astimezone(UTC)
    ts = completed.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    seq = record.terminal_seq or record.seq_reserved + 1
    event = Outcome.of(record).terminal_event(ts=ts, from_store=True)
    return WireEvent(seq, event.type, event.to_wire(seq), event)
