"""The callback step: Sluice waits for the backend to POST its enriched object to `callback_url`, then ends the
channel with it. The token is single-use and expires; when no callback comes in time the workflow's policy ends the
request: `deliver` sends the AI result marked `enriched: false`, `fail` sends an error.

The wait lives in the store (`callback_waits`: token hash, deadline, policy), never only in memory: a timer per wait
ends it on time in the process that started it, and a periodic sweep plus a pass at start-up end overdue waits
after a restart or in another instance. A conditional update on the wait's state makes sure one outcome wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sluice.broker.base import Broker
from sluice.channel.repair import announce_recorded
from sluice.channel.writer import Channel
from sluice.errors import Conflict, NotFound, SluiceError, Unauthorized, Unprocessable
from sluice.events import ResetEvent, StatusEvent
from sluice.lifecycle.finish import HandOff, ReleaseFor, finish
from sluice.lifecycle.outcome import BY_API, Outcome
from sluice.lifecycle.states import AWAITING_CALLBACK, COMPLETED
from sluice.store import RequestRecord, Store
from sluice.store.deliveries import CallbackWait, WebhookStore
from sluice.store.outcomes import StoredOutcome
from sluice.store.store import now

log = logging.getLogger("sluice.callbacks")

TOKEN_PREFIX = "cbt_"
_WRAPPED_KEYS = {"data", "task_id", "metadata"}
_ERROR_KEYS = {"error", "message", "code", "task_id", "metadata"}


class Gone(SluiceError):
    status_code = 410
    code = "callback_expired"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_callback(body: Any) -> dict[str, Any]:
    """The backend's answer as a stored result: `{"kind": "response", data, task_id?, metadata?}` or
    `{"kind": "error", code, message}`. Accepts the bare enriched object (the seed article), `{data, task_id,
    metadata}` (ModelRiver's guides) and `{error, message}` (a rejection)."""
    if not isinstance(body, dict):
        raise Unprocessable(
            "the callback body must be a JSON object: the enriched result, {data: {…}}, or {error, message}",
            code="invalid_callback",
        )
    if "error" in body and set(body) <= _ERROR_KEYS and not isinstance(body["error"], dict | list):
        reason = str(body.get("message") or body["error"])
        return {
            "kind": "error",
            "code": "rejected_by_backend",
            "message": f"the backend rejected the result: {reason}",
            "reason": str(body["error"]),
        }
    if "data" in body and set(body) <= _WRAPPED_KEYS:
        if not isinstance(body["data"], dict):
            raise Unprocessable("'data' must be a JSON object", code="invalid_callback")
        result = {"kind": "response", "data": body["data"]}
        for key in ("task_id", "metadata"):
            if body.get(key) is not None:
                result[key] = body[key]
        return result
    return {"kind": "response", "data": body}


def timeout_result(on_timeout: str, timeout_reason: str) -> dict[str, Any]:
    if on_timeout == "fail":
        return {"kind": "error", "code": "callback_timeout", "message": timeout_reason}
    return {"kind": "response", "enriched": False, "reason": timeout_reason}


def callback_outcome(result: dict[str, Any], record: RequestRecord) -> Outcome:
    """How a request ends after the callback step: the backend's enriched object, the AI result delivered
    un-enriched (on timeout, policy `deliver`), or an error (rejected, or timed out with policy `fail`)."""
    ai_meta = dict(record.meta or {})
    if result["kind"] == "cancelled":  # the cancel records its own end first; this is never the one that wins
        return Outcome.cancelled(BY_API, record.data, record.workflow)
    if result["kind"] == "error":
        return Outcome.failed(result["code"], result["message"], ai_meta)
    if result.get("enriched") is False:
        meta = {**ai_meta, "enriched": False, "callback": {"status": "timeout", "reason": result["reason"]}}
        return Outcome(status=COMPLETED, data=record.data, meta=meta, first_token_at=record.first_token_at)
    meta = {**ai_meta, "enriched": True, "callback": {"status": "received"}}
    for key, name in (("task_id", "task_id"), ("metadata", "callback_metadata")):
        if key in result:
            meta[name] = result[key]
    return Outcome(status=COMPLETED, data=result["data"], meta=meta, first_token_at=record.first_token_at)


# The delivery rows a request's end after its callback step triggers (its lifecycle webhook, if subscribed).
WebhooksAfter = Callable[[RequestRecord, Outcome], list[dict[str, Any]]]


class CallbackService:
    def __init__(
        self,
        webhooks: WebhookStore,
        store: Store,
        broker: Broker,
        *,
        sweep_interval: float = 5.0,
        webhooks_after: WebhooksAfter | None = None,
        hand_off: Callable[[list[dict[str, Any]]], HandOff | None] | None = None,
        release_for: ReleaseFor | None = None,
    ) -> None:
        self.webhooks = webhooks
        self.store = store
        self.broker = broker
        self.sweep_interval = sweep_interval
        self.webhooks_after = webhooks_after
        self.hand_off = hand_off
        self.release_for = release_for
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take up every wait a previous process left: reopen lost channel logs, finish what is overdue or resolved,
        and time the rest."""
        for wait in await self.webhooks.waits_in_progress():
            record = await self.store.get_request(wait.request_id)
            if record is None:
                continue
            if record.finished:  # recorded, never announced (the gateway died in between)
                await announce_recorded(self.broker, self.store, record)
                continue
            await self.reopen(record)
            if wait.state != "waiting":
                await self.finish(wait.request_id)
            else:
                self.schedule(wait.request_id, wait.expires_at)
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="sluice-callback-sweep")

    async def reopen_lost_logs(self) -> int:
        """After the broker lost its data while this process ran (Redis flushed or restarted without persistence):
        re-establish, from the store, the channel of every request still awaiting its callback. Their waits and
        deadlines live in the store and this process's timers, which the loss did not touch. How many were reopened
        here (another instance may have reopened the others)."""
        reopened = 0
        for wait in await self.webhooks.waits_in_progress():
            record = await self.store.get_request(wait.request_id)
            if record is not None and record.status == AWAITING_CALLBACK:
                reopened += await self.reopen(record)
        return reopened

    async def reopen(self, record: RequestRecord) -> bool:
        """Give a request awaiting its callback its channel log back, if the broker lost it (a restart of the
        in-process broker, Redis losing its data). Numbers jump past the old log's and a `reset` first says so
        explicitly, as for a re-run request (docs/architecture.md), then the `awaiting_callback` status: a client
        resuming with ?after=N never sees an unexplained gap, and one connecting now sees where the request stands.
        True if this call reopened it (of several instances, exactly one does)."""
        if await self.broker.log_info(record.id) is not None:
            return False
        if not await self.broker.open_log(record.id, next_seq=record.seq_reserved + 1):
            return False
        reason = (
            "the channel's earlier events were lost (a restart, or the broker lost its data) while the request "
            "awaited its callback"
        )
        await self.broker.append(record.id, ResetEvent(reason=reason))
        await self.broker.append(record.id, StatusEvent(status=AWAITING_CALLBACK))
        return True

    async def aclose(self) -> None:
        tasks = [*self._timers.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()

    def schedule(self, request_id: str, deadline: datetime) -> None:
        async def fire() -> None:
            # Re-read the wall clock after each sleep: the loop's clock may wake us a hair before the deadline the
            # store compares against.
            while (remaining := (deadline - now()).total_seconds()) > 0:  # noqa: ASYNC110 - a timer, not a poll
                await asyncio.sleep(remaining + 0.005)
            self._timers.pop(request_id, None)
            await self.expire(request_id)

        if request_id not in self._timers:
            self._timers[request_id] = asyncio.create_task(fire(), name=f"sluice-callback-{request_id}")

    async def sweep(self) -> int:
        overdue = await self.webhooks.overdue_waits(now())
        for request_id in overdue:
            await self.expire(request_id)
        return len(overdue)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("callback sweep failed")

    async def expire(self, request_id: str, *, reason: str | None = None) -> bool:
        """Apply the timeout policy to a wait that is overdue (or, with `reason`, right now). True if it applied."""
        wait = await self.webhooks.get_wait(request_id)
        if wait is None or wait.state != "waiting":
            return False
        forced = reason is not None
        if reason is None:
            timeout = (wait.expires_at - wait.created_at).total_seconds()
            reason = f"the backend did not call back within {round(timeout, 1):g}s"
        message = f"{reason} (workflow policy on_timeout: {wait.on_timeout})"
        result = timeout_result(wait.on_timeout, message)
        resolved = await self.webhooks.resolve_wait(
            request_id, state="timed_out", result=result, expired_at=None if forced else now()
        )
        if resolved:
            await self.finish(request_id)
        return resolved

    async def cancel(self, request_id: str) -> None:
        """Close the request's wait, if it has one that is still open: it was cancelled, so a late callback is refused
        (409) and its timeout policy never fires."""
        if await self.webhooks.resolve_wait(request_id, state="cancelled", result={"kind": "cancelled"}):
            timer = self._timers.pop(request_id, None)
            if timer is not None:
                timer.cancel()

    async def receive(
        self, channel_id: str, body: Any, *, token: str | None, project_id: str | None, admin: bool = False
    ) -> dict[str, Any]:
        """Take the backend's callback. `project_id` is set when it authenticated with an API key instead."""
        wait = await self.webhooks.get_wait(channel_id)
        if wait is None:
            raise NotFound(f"channel {channel_id!r} is not waiting for a callback", code="callback_not_found")
        if token:
            if not hmac.compare_digest(hash_token(token), wait.token_hash):
                raise Unauthorized("the callback token is not valid for this channel", code="invalid_callback_token")
        elif project_id is None or (project_id != wait.project_id and not admin):
            if project_id is not None:
                raise NotFound(f"channel {channel_id!r} is not waiting for a callback", code="callback_not_found")
            raise Unauthorized(
                "use the callback_url as given (it carries ?token=…) or send the project's API key",
                code="missing_callback_token",
            )
        self._refuse_if_closed(wait)
        result = parse_callback(body)
        if not await self.webhooks.resolve_wait(channel_id, state="received", result=result, unexpired_at=now()):
            current = await self.webhooks.get_wait(channel_id)
            assert current is not None
            self._refuse_if_closed(current)
            await self.expire(channel_id)  # past its deadline, not yet swept: end it now, then say so
            raise Gone(f"the callback window closed at {current.expires_at.isoformat()}")
        timer = self._timers.pop(channel_id, None)
        if timer is not None:
            timer.cancel()
        record = await self.finish(channel_id)
        status = record.status if record else "completed"
        return {"success": True, "channel_id": channel_id, "status": "completed" if status == "completed" else status}

    @staticmethod
    def _refuse_if_closed(wait: CallbackWait) -> None:
        if wait.state == "cancelled":
            raise Conflict("the request was cancelled: its callback is no longer taken", code="request_cancelled")
        if wait.state == "received":
            raise Conflict(
                "this callback was already received; callback tokens are single-use", code="callback_already_used"
            )
        if wait.state == "timed_out":
            raise Gone(
                f"the callback window closed at {wait.expires_at.isoformat()} and the workflow's policy "
                f"({wait.on_timeout}) already ended the request"
            )

    async def finish(self, request_id: str) -> RequestRecord | None:
        """End a request whose wait was resolved: record, announce, hand off (`sluice.lifecycle.finish`). Idempotent;
        also announces an end that was recorded but never announced (the gateway died in between)."""
        wait = await self.webhooks.get_wait(request_id)
        record = await self.store.get_request(request_id)
        if wait is None or wait.result is None or record is None:
            return record
        if record.finished:
            await announce_recorded(self.broker, self.store, record)
            return record
        if record.status != AWAITING_CALLBACK:
            return record
        await self.reopen(record)  # lost since (Redis lost its data, and this process has not noticed yet)
        channel = Channel(self.broker, self.store, record.id, record.seq_reserved)
        outcome = callback_outcome(wait.result, record)
        webhooks = self.webhooks_after(record, outcome) if self.webhooks_after is not None else []
        recorder = StoredOutcome(self.store, record.id, expected=(AWAITING_CALLBACK,), deliveries=webhooks)
        release = self.release_for(record.reservation) if self.release_for else None
        await finish(outcome, recorder, channel, self.hand_off(webhooks) if self.hand_off else None, release)
        return await self.store.get_request(record.id)


def deadline(timeout: float) -> datetime:
    return now() + timedelta(seconds=timeout)
