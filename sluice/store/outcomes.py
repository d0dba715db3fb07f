"""The store as the `OutcomeRecorder` of a durable request (`sluice.lifecycle.finish`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.store.store import Store

if TYPE_CHECKING:
    from sluice.lifecycle.outcome import Outcome


class StoredOutcome:
    """Records the end in the request's row, if it is still in one of the `expected` states, with the webhook
    `deliveries` that end triggers in the same transaction (an outbox: a crash right after the commit leaves them
    pending in the store, and the dispatcher's sweep sends them)."""

    __slots__ = ("deliveries", "expected", "request_id", "store")

    def __init__(
        self,
        store: Store,
        request_id: str,
        *,
        expected: tuple[str, ...],
        deliveries: list[dict[str, Any]] | None = None,
    ) -> None:
        self.store = store
        self.request_id = request_id
        self.expected = expected
        self.deliveries = deliveries or []

    async def record(self, outcome: Outcome) -> bool:
        return await self.store.finish_request(
            self.request_id, outcome, expected=self.expected, deliveries=self.deliveries
        )

    async def announced(self, terminal_seq: int | None) -> None:
        if terminal_seq is not None:
            await self.store.set_terminal_seq(self.request_id, terminal_seq)
