"""What a request is and what happens after its run, decided once when it is accepted and stored with it.

`kind` says which task runs it (the worker and the pass-through dispatch on it): `chat`, or `embeddings`
(`POST /v1/embeddings`); other APIs add theirs.
The rest is the delivery plan: where the webhook goes, whether the callback step applies, which outcomes get a
lifecycle webhook. `delivery_method` (DESIGN.md §4):

    websocket (default)  the channel, plus whatever webhook the request or its workflow names
    webhook              the same, but a webhook target is required (the request's `webhook_url` or the workflow's)
    none                 the channel only: no webhook, whatever the workflow names; a request that also names
                         `webhook_url` or the callback step is refused
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sluice.errors import Unprocessable
from sluice.lifecycle.states import CANCELLED, COMPLETED, FAILED
from sluice.workflows.model import Workflow

if TYPE_CHECKING:
    from sluice.store import RequestRecord

CHAT = "chat"
EMBEDDINGS = "embeddings"
KINDS = (CHAT, EMBEDDINGS)
# A workflow whose webhook_url is "forward" (the seed's "Localhost CLI" type) sends every webhook through
# `sluice forward`, whatever URL the request names.
FORWARD_TARGET = "forward"
CALLBACK_EVENT = "webhook_received"
LIFECYCLE_EVENTS = {
    "request.completed": COMPLETED,
    "request.failed": FAILED,
    "request.cancelled": CANCELLED,
    "task.completed": COMPLETED,
    "task.failed": FAILED,
    "task.cancelled": CANCELLED,
}
DELIVERY_METHODS = ("websocket", "webhook", "none")


@dataclass(frozen=True)
class Plan:
    kind: str = CHAT
    target: str | None = None  # the webhook URL, or FORWARD_TARGET; None: no webhook
    callback_event: str | None = None  # set: the webhook → callback step runs before the terminal event
    lifecycle: frozenset[str] = frozenset()  # outcomes that get a lifecycle webhook

    @property
    def follows_run(self) -> bool:
        """Something happens after the answer (a webhook or the callback step): the request must be durable."""
        return self.target is not None

    def webhook_on(self, status: str) -> bool:
        return self.target is not None and status in self.lifecycle

    @cached_property
    def _record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "callback_event": self.callback_event,
            "lifecycle": sorted(self.lifecycle),
        }

    def to_record(self) -> dict[str, Any]:
        """The plan as stored with its request (one dict per plan object: not to be changed)."""
        return self._record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Plan:
        return cls(
            kind=record.get("kind", CHAT),
            target=record.get("target"),
            callback_event=record.get("callback_event"),
            lifecycle=frozenset(record.get("lifecycle") or ()),
        )


_CHANNEL_ONLY = Plan()
# Embeddings go to their caller only: the vectors are never recorded, so no webhook could carry them.
_EMBEDDINGS_ONLY = Plan(kind=EMBEDDINGS)
_DELIVERY_FIELDS = frozenset({"delivery_method", "webhook_url", "events"})


def plan_for(body: dict[str, Any], workflow: Workflow | None, kind: str = CHAT) -> Plan:
    """The plan of an accepted request body; `Unprocessable` for a delivery it contradicts."""
    if kind == CHAT and not _DELIVERY_FIELDS.intersection(body) and not (workflow and workflow.webhook_url):
        return _CHANNEL_ONLY  # the usual chat completion: decided without looking further
    if kind == EMBEDDINGS:
        return _EMBEDDINGS_ONLY  # whatever webhook the workflow names
    method = body.get("delivery_method") or "websocket"
    events = set(body.get("events") or ())
    workflow_url = workflow.webhook_url if workflow else None
    if method == "none":
        if body.get("webhook_url") or CALLBACK_EVENT in events:
            raise Unprocessable(
                "delivery_method 'none' sends no webhook: drop webhook_url and the webhook_received event, "
                "or use delivery_method 'websocket' or 'webhook'",
                code="invalid_delivery",
            )
        return Plan(kind=kind)
    target = FORWARD_TARGET if workflow_url == FORWARD_TARGET else (body.get("webhook_url") or workflow_url)
    if method == "webhook" and not target:
        raise Unprocessable(
            "delivery_method 'webhook' needs a webhook_url (in the request, or in the workflow)",
            code="invalid_delivery",
        )
    callback_event = None
    if target:
        if CALLBACK_EVENT in events:
            callback_event = CALLBACK_EVENT
        elif workflow is not None and workflow.event and workflow.event in events:
            callback_event = workflow.event
    subscribed = {LIFECYCLE_EVENTS[name] for name in events if name in LIFECYCLE_EVENTS}
    if not target:
        lifecycle: frozenset[str] = frozenset()
    elif subscribed:
        lifecycle = frozenset(subscribed)
    elif callback_event:  # the backend hears of the result through the callback step, and of a cancel
        lifecycle = frozenset({CANCELLED})
    else:  # a webhook_url and no subscription: the result goes to it, success, failure or cancel
        lifecycle = frozenset({COMPLETED, FAILED, CANCELLED})
    return Plan(kind=kind, target=target, callback_event=callback_event, lifecycle=lifecycle)


def plan_of(record: RequestRecord, workflow: Workflow | None) -> Plan:
    """The plan stored with a request; one accepted before plans were stored (migration 0004) gets it worked out
    from its body, as it was then (`delivery_method` was not read)."""
    if record.plan is not None:
        return Plan.from_record(record.plan)
    return plan_for({k: v for k, v in record.body.items() if k != "delivery_method"}, workflow)
