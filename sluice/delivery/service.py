"""What the gateway and the worker call: the SSRF check at submit, and after a run either the callback step (the
terminal event waits for the backend) or the lifecycle webhook. Wires the store, dispatcher, callbacks and tunnel.

Every decision comes from the request's `Plan` (`sluice.lifecycle.plan`), made once when it was accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from sluice.broker.base import Broker
from sluice.channel.writer import Channel
from sluice.crypto import CredentialCipher
from sluice.delivery.callbacks import CallbackService, deadline, hash_token, new_token
from sluice.delivery.dispatcher import DeliveryConfig, WebhookDispatcher
from sluice.delivery.payloads import AI_GENERATED, callback_payload, lifecycle_payload
from sluice.delivery.secrets import SecretBox
from sluice.delivery.tunnel import ForwardHub
from sluice.delivery.urlguard import check_webhook_url
from sluice.events import StatusEvent, WebhookEvent
from sluice.lifecycle.finish import HandOff, ReleaseFor
from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.plan import FORWARD_TARGET, Plan, plan_of
from sluice.lifecycle.ports import RequestEnded
from sluice.lifecycle.states import AWAITING_CALLBACK, COMPLETED
from sluice.settings import Settings
from sluice.store import RequestRecord, Store
from sluice.store.deliveries import DeliveryRecord, WebhookStore
from sluice.workflows.model import Catalog, Workflow

WEBHOOK_SECRETS_INFO = b"sluice/webhook-secrets/v1"  # its own encryption key, derived from SLUICE_SECRET_KEY


class Delivery:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        broker: Broker,
        catalog: Callable[[], Catalog],
        release_for: ReleaseFor | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.catalog = catalog
        self.config = DeliveryConfig.from_extra(settings.extra)
        cipher = CredentialCipher(settings.secret_key, info=WEBHOOK_SECRETS_INFO) if settings.secret_key else None
        self.webhooks = WebhookStore(store.engine, SecretBox(cipher) if cipher else None)
        self.hub = ForwardHub()
        self.dispatcher = WebhookDispatcher(
            self.webhooks,
            self.hub,
            self.config,
            allow_private=self.allow_private,
            on_progress=self._progress,
            on_exhausted=self._exhausted,
            modelriver_signature=self.modelriver_signature,
        )
        self.callbacks = CallbackService(
            self.webhooks,
            store,
            broker,
            sweep_interval=float(settings.extra.get("callback_sweep_interval", 5.0)),
            webhooks_after=self._after_callback,
            hand_off=self.hand_off,
            release_for=release_for,
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

    async def modelriver_signature(self, delivery: DeliveryRecord) -> bool:
        """Whether the delivery also carries X-ModelRiver-Signature: its workflow's `modelriver_signature` as it is
        now (a change applies to retries and replays too); on when the workflow is gone."""
        record = await self.store.get_request(delivery.request_id)
        workflow = self.catalog().workflow(record.workflow, record.project_id) if record is not None else None
        return workflow.modelriver_signature if workflow is not None else True

    async def check_request(self, project_id: str, plan: Plan) -> None:
        """Refuse (422) a webhook target the SSRF guard does not allow, before the request is accepted."""
        if plan.target and plan.target != FORWARD_TARGET:
            await check_webhook_url(plan.target, allow_private=await self.allow_private(project_id))

    async def begin_callback(
        self, channel: Channel, record: RequestRecord, plan: Plan, workflow: Workflow, outcome: Outcome
    ) -> bool:
        """After a successful run with the callback step: send the webhook and leave the request awaiting the
        callback. False when the callback step does not apply (the caller finishes the request); `RequestEnded` when
        the request was ended meanwhile (cancelled): nothing is sent."""
        if outcome.status != COMPLETED or plan.callback_event is None or plan.target is None:
            return False
        token = new_token()
        expires_at = deadline(workflow.callback.timeout)
        callback_url = f"{self.settings.base_url}/v1/callback/{record.id}?token={token}"
        payload = callback_payload(
            record,
            workflow,
            event=plan.callback_event,
            data=outcome.data,
            meta=outcome.meta,
            callback_url=callback_url,
            expires_at=expires_at,
        )
        delivery_id = await self.webhooks.begin_callback(
            request_id=record.id,
            project_id=record.project_id,
            token_hash=hash_token(token),
            on_timeout=workflow.callback.on_timeout,
            expires_at=expires_at,
            data=outcome.data,
            meta=outcome.meta,
            delivery={"type": AI_GENERATED, "url": plan.target, "body": orjson.dumps(payload).decode()},
            lease=self.config.lease,
        )
        if delivery_id is None:
            raise RequestEnded(f"request {record.id} ended (cancelled) as its run finished")
        await channel.emit(StatusEvent(status=AWAITING_CALLBACK))
        self.callbacks.schedule(record.id, expires_at)
        self.dispatcher.launch(delivery_id)
        return True

    def lifecycle_webhooks(
        self, record: RequestRecord, plan: Plan, workflow: Workflow | None, outcome: Outcome
    ) -> list[dict[str, Any]]:
        """The delivery rows (0 or 1) the request's end triggers, to be recorded with that end (`finish`)."""
        if plan.target is None or not plan.webhook_on(outcome.status):
            return []
        payload = lifecycle_payload(
            record, workflow, status=outcome.status, data=outcome.data, meta=outcome.meta, error=outcome.error
        )
        return [
            self.webhooks.delivery_row(
                project_id=record.project_id,
                request_id=record.id,
                type=payload["type"],
                url=plan.target,
                body=orjson.dumps(payload).decode(),
                lease=self.config.lease,
            )
        ]

    def hand_off(self, rows: list[dict[str, Any]]) -> HandOff | None:
        """The last step of `finish`: send the deliveries recorded with the end (this process holds their lease)."""
        if not rows:
            return None

        async def launch(_: Outcome) -> None:
            for row in rows:
                self.dispatcher.launch(row["id"])

        return launch

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
        await self.callbacks.reopen(record)  # lost meanwhile (Redis lost its data)
        channel = Channel(self.broker, self.store, record.id, record.seq_reserved)
        await channel.emit(WebhookEvent(state=state, attempt=attempt, status_code=status_code))

    def _after_callback(self, record: RequestRecord, outcome: Outcome) -> list[dict[str, Any]]:
        # The lifecycle webhook a request subscribed to (`events: ["request.completed"]`) follows the callback step.
        workflow = self.catalog().workflow(record.workflow, record.project_id)
        return self.lifecycle_webhooks(record, plan_of(record, workflow), workflow, outcome)

    async def _exhausted(self, delivery: DeliveryRecord) -> None:
        if delivery.type == AI_GENERATED:
            attempts = delivery.attempts + 1
            await self.callbacks.expire(
                delivery.request_id, reason=f"the webhook could not be delivered in {attempts} attempts"
            )
