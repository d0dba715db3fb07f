"""The gateway's services wired together: store, broker, catalog, token signer, runner and workers.

API handlers call these methods and render the result; nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from sluice.admin.catalog import StoredCatalog
from sluice.broker import create_broker
from sluice.broker.base import Broker
from sluice.budgets import Budgets
from sluice.cancellation import Cancellation
from sluice.channel.reader import channel_batches, wait_terminal
from sluice.channel.writer import SEQ_BLOCK
from sluice.crypto import CredentialCipher
from sluice.delivery.service import Delivery
from sluice.engine.run import Runner
from sluice.engine.tasks import tasks_for
from sluice.errors import NotFound, Unprocessable
from sluice.events import StatusEvent, WireEvent
from sluice.ids import new_request_id
from sluice.keycache import KeyCache
from sluice.lifecycle.plan import CHAT, Plan, plan_for
from sluice.lifecycle.states import QUEUED, RUNNING
from sluice.observability.metrics import Metrics
from sluice.observability.tap import observe_deliveries, observed
from sluice.observability.tracing import tracing_observers
from sluice.passthrough import Finished, PassThrough
from sluice.patience import Patience
from sluice.providers.pool import ProviderPool
from sluice.quotas import Quotas
from sluice.runs import Runs
from sluice.settings import Settings
from sluice.spend.limits import Limits, Reservation
from sluice.spend.prices import Prices
from sluice.store import RequestRecord, Store
from sluice.store.admin import AdminStore
from sluice.store.database import create_engine, migrate
from sluice.store.spend import SpendStore
from sluice.store.store import IdempotencyConflict, hash_key, now
from sluice.surfaces import api_of
from sluice.tokens import TokenSigner
from sluice.worker import Worker
from sluice.workflows.model import Catalog
from sluice.workflows.reload import CatalogFile
from sluice.workflows.shorthand import ShorthandError, compile_schema


@dataclass(frozen=True)
class Principal:
    """Who is calling: a project's API key, or the master key (admin rights on the default project)."""

    project_id: str
    key_id: str
    admin: bool = False
    limits: Limits | None = None  # the key's budget and per-minute limits (`sluice.budgets`)

    @property
    def operator(self) -> bool:
        """The master key: the operator's, the one key that reaches every project's requests. A project's admin
        key manages its project only."""
        return self.key_id == "master"


SYNC_TIMEOUT = 600.0  # how long a synchronous caller waits for its answer
ChannelBatches = AsyncIterator[list[WireEvent] | None]


@dataclass(frozen=True)
class Submission:
    record: RequestRecord
    replayed: bool = False
    # A pass-through's run in this process; it ends with the terminal event (see `PassThrough.start`).
    run: asyncio.Task[Finished] | None = None


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings.with_secret_key()
        assert self.settings.secret_key is not None
        self.config_file = CatalogFile(self.settings.config_path, interval=self.settings.config_poll_interval)
        self.catalog: Catalog = self.config_file.load()
        self._catalog_lock = asyncio.Lock()
        self.store = Store(create_engine(self.settings.resolved_database_url))
        self.metrics = Metrics()
        self.broker: Broker = observed(  # every appended channel event is counted once, here
            create_broker(self.settings.redis_url, retention_seconds=self.settings.retention_seconds),
            self.metrics,
            *tracing_observers(self.settings.extra),
        )
        self.signer = TokenSigner(self.settings.secret_key, ws_token_ttl=self.settings.ws_token_ttl)
        self.providers = ProviderPool(self.catalog)
        self.prices = Prices(lambda: self.catalog)
        self.spend_store = SpendStore(self.store.engine)
        self.budgets = Budgets(self.broker, self.spend_store, self.prices, lambda: self.catalog, self.metrics)
        self.delivery = Delivery(
            self.settings, self.store, self.broker, lambda: self.catalog, release_for=self.budgets.releaser
        )
        observe_deliveries(self.delivery.dispatcher, self.metrics)
        self.runs = Runs(self.broker)  # the runs of this instance, which a cancel (from any instance) stops
        self.patience = Patience()  # when a non-streamed answer's client starts being watched for hanging up
        self.cancellation = Cancellation(
            self.store, self.broker, self.runs, self.delivery, lambda: self.catalog, self.budgets.releaser
        )
        self.worker = Worker(
            self.broker,
            self.store,
            tasks_for(Runner(self.providers, self.store, self.broker, prices=self.prices)),
            lambda: self.catalog,
            concurrency=self.settings.worker_concurrency,
            delivery=self.delivery,
            budgets=self.budgets,
            max_crashes=self.settings.job_max_crashes,
            runs=self.runs,
            cancellation=self.cancellation,
        )
        self.passthrough = PassThrough(self.broker, self.store, self.providers, self.runs, self.prices, self.budgets)
        self.default_project_id = ""
        self.key_cache: KeyCache[Principal] = KeyCache()  # authenticate() without a store read per request
        self._key_lookups: dict[str, asyncio.Future[Principal | None]] = {}
        self.admin_store = AdminStore(self.store.engine)
        self.quotas = Quotas(self.settings, self.broker)
        self.stored_catalog = StoredCatalog(self.catalog, self.admin_store, CredentialCipher(self.settings.secret_key))

    async def start(self) -> None:
        await migrate(self.store.engine)
        self.default_project_id = await self.store.ensure_project()
        await self.refresh_catalog()
        await self.broker.start()
        await self.worker.recover()
        await self.delivery.start()
        self.worker.start()
        self.stored_catalog.start(self.refresh_catalog)
        self.config_file.start(self.use_config)

    async def aclose(self) -> None:
        await self.patience.aclose()
        await self.config_file.aclose()
        await self.stored_catalog.aclose()
        await self.worker.stop()
        await self.passthrough.aclose()
        await self.delivery.aclose()
        await self.providers.aclose()
        await self.broker.aclose()
        await self.store.aclose()

    async def use_config(self, base: Catalog) -> None:
        """Run with a reloaded config file's catalog (validated: `sluice.workflows.reload`) under the stored one."""
        await self.refresh_catalog(base)

    async def reload_config(self) -> bool:
        """Reload the config file now (`SIGHUP`); False if it does not validate (logged; the catalog is kept)."""
        return await self.config_file.reload(self.use_config, force=True)

    async def refresh_catalog(self, base: Catalog | None = None) -> None:
        """Rebuild the catalog from the config file (`base`: a reloaded one) plus the providers and workflows stored
        via the admin API. One rebuild at a time: one begun before a reload must not end after it, on the old file."""
        async with self._catalog_lock:
            self.catalog = await self.stored_catalog.build(base)
            self.providers.reconfigure(self.catalog)

    async def authenticate(self, api_key: str) -> Principal | None:
        master = self.settings.master_key
        if master and hmac.compare_digest(api_key.encode(), master.encode()):
            return Principal(project_id=self.default_project_id, key_id="master", admin=True)
        key_hash = hash_key(api_key)
        cached = self.key_cache.get(key_hash)
        if cached is not None:
            return cached
        # When a busy key's cache entry expires, every request in flight misses at once: one store read serves them.
        lookup = self._key_lookups.get(key_hash)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up_key(api_key, key_hash))
            self._key_lookups[key_hash] = lookup
            lookup.add_done_callback(lambda _: self._key_lookups.pop(key_hash, None))
        return await asyncio.shield(lookup)

    async def _look_up_key(self, api_key: str, key_hash: str) -> Principal | None:
        record = await self.store.find_api_key(api_key)
        if record is None:
            return None
        limits = Limits.of(vars(record))
        principal = Principal(
            project_id=record.project_id,
            key_id=record.id,
            admin=record.is_admin,
            limits=limits if limits.any else None,
        )
        self.key_cache.put(key_hash, record.id, principal)
        return principal

    async def revoke_api_key(self, project_id: str, key_id: str) -> bool:
        """Revoke a key in the store and drop it from this instance's cache at once."""
        revoked = await self.admin_store.revoke_api_key(project_id, key_id)
        self.key_cache.forget(key_id)
        return revoked

    async def submit(
        self,
        principal: Principal,
        body: dict[str, Any],
        *,
        mode: str,
        idempotency_key: str | None = None,
        durable: bool = True,
        streamed: bool = True,
        kind: str = CHAT,
    ) -> Submission:
        """Durably record and queue a request. Returns only once a restart could not lose it.

        `durable=False` (the pass-through of `/v1/chat/completions`, see `sluice.passthrough`): run it at once in this
        process and record it when it has finished, if nothing happens after its answer (else: durable anyway).
        `streamed=False` (a pass-through's caller wants the answer whole): providers may answer in one piece.
        `kind`: the request kind (`sluice.lifecycle.plan.KINDS`), which task runs it.
        """
        workflow_name = body["workflow"]
        workflow = self.catalog.workflow(workflow_name, principal.project_id)
        if workflow is None:
            known = ", ".join(sorted(self.catalog.of_project(principal.project_id).workflows))
            raise NotFound(
                f"workflow {workflow_name!r} does not exist; known workflows: {known}", code="workflow_not_found"
            )
        plan = plan_for(body, workflow, kind)
        await self.delivery.check_request(principal.project_id, plan)
        if body.get("schema") is not None:
            body = {**body, "schema": _compile_override(body["schema"])}
        request_id = new_request_id()
        # Before anything is recorded or run: past a budget or a rate limit, nothing is dispatched (402, 429).
        reservation = await self.budgets.reserve(
            request_id, principal.key_id, principal.limits, principal.project_id, workflow, body
        )
        self.metrics.accepted(api_of(body))
        accepted = (request_id, principal, workflow_name, mode, body, plan, reservation)
        if not durable and idempotency_key is None and not plan.follows_run:
            record = _new_record(*accepted, running=True)
            run = await self.passthrough.start(record, workflow, plan, streamed=streamed)
            return Submission(record=record, run=run)
        body_hash = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        record = _new_record(*accepted, idempotency_key=idempotency_key, body_hash=body_hash)
        try:
            await self.store.insert_request(record)
        except BaseException as error:
            if reservation is not None:  # not accepted after all: give its hold back
                await self.budgets.release(reservation)
            if not isinstance(error, IdempotencyConflict):
                raise
            if error.existing.body_hash != body_hash:
                raise Unprocessable(
                    "this Idempotency-Key was already used with a different request body; use a new key",
                    code="idempotency_key_reused",
                ) from None
            return Submission(record=error.existing, replayed=True)
        await self.broker.open_log(record.id)
        await self.broker.append(record.id, StatusEvent(status=QUEUED))
        await self.broker.enqueue(record.id)
        return Submission(record=record)

    def follow(self, channel_id: str, after: int, heartbeat: float | None = None) -> ChannelBatches:
        """A channel's events after `after`, then live ones, for one subscriber (`sluice.channel.reader`)."""
        wait = self.settings.heartbeat_interval if heartbeat is None else heartbeat
        return channel_batches(self.broker, self.store, channel_id, after, wait)

    async def wait_terminal(self, channel_id: str) -> WireEvent:
        """The request's terminal event, waiting for it as a synchronous caller does."""
        return await wait_terminal(self.broker, self.store, channel_id, SYNC_TIMEOUT)

    async def request_for(self, principal: Principal, request_id: str) -> RequestRecord:
        record = await self.store.get_request(request_id)
        if record is None or (record.project_id != principal.project_id and not principal.operator):
            raise NotFound(f"no request {request_id!r} in this project", code="request_not_found")
        return record

    async def cancel(self, principal: Principal | None, request_id: str) -> RequestRecord:
        """End a request as `cancelled`, wherever it runs (`sluice.cancellation`): the end is recorded and announced
        (`error`, code `cancelled`) before this returns, and the instance that runs its provider call closes it. A
        finished request is returned as it is. `principal` None: the caller holds the request's `cancel_token`."""
        project = None if principal is None or principal.operator else principal.project_id  # None: any project
        record = await self.store.get_request(request_id)
        if record is None:  # a pass-through is stored once it has ended: one may be running, here or elsewhere
            record = await self.cancellation.cancel_passthrough(request_id, project)
        if record is None or (project is not None and record.project_id != project):
            raise NotFound(f"no request {request_id!r} in this project", code="request_not_found")
        if not record.finished:
            await self.cancellation.cancel(record)
            record = await self.store.get_request(record.id) or record
        return record

    def accepted_body(self, record: RequestRecord, key_id: str | None = None) -> dict[str, Any]:
        """The 202 body of `POST /v1/ai/async` (DESIGN.md §4, with the seed's and ModelRiver's field names)."""
        token = self.signer.ws_token(record.id, record.project_id, key_id=key_id)
        base, ws_base = self.settings.base_url, self.settings.ws_base_url
        return {
            "message": "success",
            "status": "pending",
            "channel_id": record.id,
            "request_id": record.id,
            "project_id": record.project_id,
            "websocket_url": f"{ws_base}/v1/ws?channel_id={record.id}&token={token}",
            "ws_token": token,
            "websocket_channel": f"ai_response:{record.project_id}:{record.id}",
            "status_url": f"{base}/v1/requests/{record.id}",
            "events_url": f"{base}/v1/channels/{record.id}/events",
            "cancel_url": self.cancel_url(record.id),
        }

    def cancel_url(self, request_id: str) -> str:
        """`POST` it to cancel the request, without an API key: it carries the request's `cancel_token`."""
        return f"{self.settings.base_url}/v1/requests/{request_id}/cancel?token={self.signer.cancel_token(request_id)}"


def _new_record(
    request_id: str,
    principal: Principal,
    workflow: str,
    mode: str,
    body: dict[str, Any],
    plan: Plan,
    reservation: Reservation | None,
    *,
    running: bool = False,
    idempotency_key: str | None = None,
    body_hash: str | None = None,
) -> RequestRecord:
    """A just-accepted request: queued (durable), or already running (a pass-through, recorded when it ends)."""
    created = now()
    return RequestRecord(
        id=request_id,
        project_id=principal.project_id,
        workflow=workflow,
        status=RUNNING if running else QUEUED,
        mode=mode,
        body=body,
        plan=plan.to_record(),
        metadata=body.get("metadata") or None,
        idempotency_key=idempotency_key,
        body_hash=body_hash,
        data=None,
        error=None,
        meta=None,
        run_count=1 if running else 0,
        seq_reserved=SEQ_BLOCK,
        terminal_seq=None,
        created_at=created,
        started_at=created if running else None,
        first_token_at=None,
        completed_at=None,
        key_id=principal.key_id,
        reservation=reservation.to_json() if reservation else None,
    )


def _compile_override(schema: dict[str, Any]) -> dict[str, Any]:
    try:
        return compile_schema(schema)
    except ShorthandError as exc:
        raise Unprocessable(str(exc), code="invalid_schema") from exc
