"""What the gateway and the worker call: the SSRF check at submit, and after a run either the callback step (the
terminal event waits for the backend) or the lifecycle webhook. Wires the store, dispatcher, callbacks and tunnel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from sluice.broker.base import Broker
from sluice.channel.writer import Channel
from sluice.crypto import CredentialCipher
from sluice.delivery.callbacks import CallbackService, deadline, hash_token, new_token
from sluice.delivery.dispatcher import FORWARD_TARGET, DeliveryConfig, WebhookDispatcher
from sluice.delivery.payloads import AI_GENERATED, callback_payload, lifecycle_payload
from sluice.delivery.tunnel import ForwardHub
from sluice.delivery.urlguard import check_webhook_url
from sluice.events import StatusEvent, WebhookEvent
from sluice.settings import Settings
from sluice.store import RequestRecord, Store
from sluice.store.deliveries import AWAITING_CALLBACK, DeliveryRecord, WebhookStore
from sluice.workflows.model import Workflow

CALLBACK_EVENT = "webhook_received"
WEBHOOK_SECRETS_INFO = b"sluice/webhook-secrets/v1"  # its own encryption key, derived from SLUICE_SECRET_KEY
LIFECYCLE_EVENTS = {
    "request.completed": "completed",
    "request.failed": "failed",
    "task.completed": "completed",
    "task.failed": "failed",
}


@dataclass(frozen=True)
class Plan:
    """What happens after the run: where the webhook goes, whether the callback step applies, which outcomes get a
    lifecycle webhook."""

    target: str | None
    callback_event: str | None
    lifecycle: frozenset[str]


def plan_for(body: dict[str, Any], workflow: Workflow | None) -> Plan:
    # A workflow whose webhook_url is "forward" (the seed's "Localhost CLI" type) sends every webhook through
    # `sluice forward`, whatever URL the request names.
    workflow_url = workflow.webhook_url if workflow else None
    target = FORWARD_TARGET if workflow_url == FORWARD_TARGET else (body.get("webhook_url") or workflow_url)
    events = set(body.get("events") or ())
    callback_event = None
    if target:
        if CALLBACK_EVENT in events:
            callback_event = CALLBACK_EVENT
        elif workflow is not None and workflow.event and workflow.event in events:
            callback_event = workflow.event
    subscribed = {LIFECYCLE_EVENTS[name] for name in events if name in LIFECYCLE_EVENTS}
    if not target:
        lifecycle: frozenset[str] = frozenset()
    elif subscribed or callback_event:
        lifecycle = frozenset(subscribed)
    else:  # a webhook_url and no subscription: the result goes to it, success or failure
        lifecycle = frozenset({"completed", "failed"})
    return Plan(target=target, callback_event=callback_event, lifecycle=lifecycle)


class Delivery:
    def __init__(self, settings: Settings, store: Store, broker: Broker) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.config = DeliveryConfig.from_extra(settings.extra)
        cipher = CredentialCipher(settings.secret_key, info=WEBHOOK_SECRETS_INFO) if settings.secret_key else None
        self.webhooks = WebhookStore(store.engine, cipher)
        self.hub = ForwardHub()
        self.dispatcher = WebhookDispatcher(
            self.webhooks,
            self.hub,
            self.config,
            allow_private=self.allow_private,
            on_progress=self._progress,
            on_exhausted=self._exhausted,
        )
        self.callbacks = CallbackService(
            self.webhooks, store, broker, sweep_interval=float(settings.extra.get("callback_sweep_interval", 5.0))
        )

    async def start(self) -> None:
        await self.callbacks.start()
        await self.dispatcher.start()

    async def aclose(self) -> None:
        await self.dispatcher.aclose()
        await self.callbacks.aclose()

    async def allow_private(self, project_id: str) -> bool:
        if self.settings.development or self.settings.extra.get("webhook_allow_private_urls"):
            return True
        return await self.webhooks.allow_private_urls(project_id)

    async def check_request(self, project_id: str, body: dict[str, Any], workflow: Workflow | None) -> None:
        """Refuse (422) a webhook target the SSRF guard does not allow, before the request is accepted."""
        target = plan_for(body, workflow).target
        if target and target != FORWARD_TARGET:
            await check_webhook_url(target, allow_private=await self.allow_private(project_id))

    async def begin_callback(
        self, channel: Channel, record: RequestRecord, workflow: Workflow, status: str, data: Any, meta: dict[str, Any]
    ) -> bool:
        """After a successful run with the callback step: send the webhook and leave the request awaiting the
        callback. False when the callback step does not apply (the caller emits the terminal event)."""
        plan = plan_for(record.body, workflow)
        if status != "completed" or plan.callback_event is None or plan.target is None:
            return False
        token = new_token()
        expires_at = deadline(workflow.callback.timeout)
        callback_url = f"{self.settings.base_url}/v1/callback/{record.id}?token={token}"
        payload = callback_payload(
            record,
            workflow,
            event=plan.callback_event,
            data=data,
            meta=meta,
            callback_url=callback_url,
            expires_at=expires_at,
        )
        delivery_id = await self.webhooks.begin_callback(
            request_id=record.id,
            project_id=record.project_id,
            token_hash=hash_token(token),
            on_timeout=workflow.callback.on_timeout,
            expires_at=expires_at,
            data=data,
            meta=meta,
            delivery={"type": AI_GENERATED, "url": plan.target, "body": orjson.dumps(payload).decode()},
            lease=self.config.lease,
        )
        await channel.emit(StatusEvent(status=AWAITING_CALLBACK))
        self.callbacks.schedule(record.id, expires_at)
        self.dispatcher.launch(delivery_id)
        return True

    async def send_lifecycle(
        self,
        record: RequestRecord,
        workflow: Workflow | None,
        status: str,
        data: Any,
        meta: dict[str, Any],
        error: dict[str, Any] | None,
    ) -> str | None:
        plan = plan_for(record.body, workflow)
        if plan.target is None or status not in plan.lifecycle:
            return None
        payload = lifecycle_payload(record, workflow, status=status, data=data, meta=meta, error=error)
        delivery_id = await self.webhooks.create_delivery(
            project_id=record.project_id,
            request_id=record.id,
            type=payload["type"],
            url=plan.target,
            body=orjson.dumps(payload).decode(),
            lease=self.config.lease,
        )
        self.dispatcher.launch(delivery_id)
        return delivery_id

    async def replay(self, delivery_id: str) -> bool:
        if not await self.webhooks.replay(delivery_id, lease=self.config.lease):
            return False
        self.dispatcher.launch(delivery_id)
        return True

    async def _progress(self, delivery: DeliveryRecord, state: str, attempt: int, status_code: int | None) -> None:
        # Progress shows on the channel while it is open (the callback step); after the terminal event the broker
        # refuses further events, which is what we want for lifecycle webhooks and replays.
        if delivery.type != AI_GENERATED:
            return
        record = await self.store.get_request(delivery.request_id)
        if record is None or record.status != AWAITING_CALLBACK:
            return
        channel = Channel(self.broker, self.store, record.id, record.seq_reserved)
        await channel.emit(WebhookEvent(state=state, attempt=attempt, status_code=status_code))

    async def _exhausted(self, delivery: DeliveryRecord) -> None:
        if delivery.type == AI_GENERATED:
            attempts = delivery.attempts + 1
            await self.callbacks.expire(
                delivery.request_id, reason=f"the webhook could not be delivered in {attempts} attempts"
            )
