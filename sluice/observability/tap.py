"""Where metrics observe the gateway: a broker wrapper that shows every appended channel event to the metrics (the
one place channel events are observed; tracing observes there too), and the webhook dispatcher's progress
callbacks.

It delegates everything else unchanged (including methods only some brokers have, such as Redis's
`wait_for_data_loss`), so the rest of the gateway cannot tell it apart from the broker it wraps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

from sluice.broker.base import Broker
from sluice.events import Event, WireEvent
from sluice.observability.metrics import Metrics

if TYPE_CHECKING:
    from sluice.delivery.dispatcher import WebhookDispatcher
    from sluice.store.deliveries import DeliveryRecord


class Observer(Protocol):
    def observe(self, channel_id: str, event: Event) -> None: ...


class ObservedBroker:
    def __init__(self, inner: Broker, *observers: Observer) -> None:
        self.inner = inner
        self.observers = observers

    async def append(self, channel_id: str, event: Event) -> WireEvent | None:
        wire = await self.inner.append(channel_id, event)
        if wire is not None:  # None: the log already ended, so the event did not happen
            for observer in self.observers:
                observer.observe(channel_id, event)
        return wire

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def observed(inner: Broker, *observers: Observer) -> Broker:
    # It forwards what it does not wrap (`__getattr__`), which a type checker cannot follow.
    return cast(Broker, ObservedBroker(inner, *observers))


def observe_deliveries(dispatcher: WebhookDispatcher, metrics: Metrics) -> None:
    """Count every webhook attempt and every dead-lettered delivery, then call the dispatcher's own callbacks."""
    progress, exhausted = dispatcher.on_progress, dispatcher.on_exhausted

    async def on_progress(delivery: DeliveryRecord, state: str, attempt: int, status_code: int | None) -> None:
        if state != "sent":  # "sent" starts an attempt; "delivered" or "failed" ends it
            metrics.webhook_attempt(state)
        await progress(delivery, state, attempt, status_code)

    async def on_exhausted(delivery: DeliveryRecord) -> None:
        metrics.webhook_dead_lettered()
        await exhausted(delivery)

    dispatcher.on_progress, dispatcher.on_exhausted = on_progress, on_exhausted
