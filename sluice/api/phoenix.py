"""`/socket/websocket`: the Phoenix Channels (v2 JSON) face of the channel log, for ModelRiver's client SDK and any
Phoenix client (DESIGN.md §9, research/modelriver.md §2).

The `ws_token` is the socket's `token` parameter (or phoenix.js's `authToken`); a bad token refuses the handshake,
as a Phoenix `connect/3` returning `:error` does. The socket counts as one stream of the key that submitted the
request (`SLUICE_MAX_CONCURRENT_STREAMS`, as `/v1/ws` does): past the limit it is closed at once with 4429. A client
then joins `ai_response:{project_id}:{channel_id}` (or the older `ai_response:{channel_id}`) and gets the channel's
events mapped by `sluice.compat.airesponse`: everything it missed first, then live events, then `phx_close` after the
terminal push. Join params may carry `{"after": seq}` to resume where a previous connection stopped (a Sluice
extension; ModelRiver's SDK joins with `{}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from sluice.api.auth import gateway_of
from sluice.api.channels import WS_CLOSE_CODES
from sluice.compat import phoenix_wire as wire
from sluice.compat.airesponse import ResponseMapper
from sluice.compat.customer import customer_data
from sluice.delivery.payloads import AI_GENERATED
from sluice.errors import SluiceError
from sluice.events import StatusEvent
from sluice.gateway import Gateway
from sluice.lifecycle.plan import CALLBACK_EVENT
from sluice.lifecycle.states import AWAITING_CALLBACK
from sluice.tokens import TokenError

router = APIRouter(tags=["channels"])
log = logging.getLogger("sluice.phoenix")

TOPIC_PREFIX = "ai_response:"
# Phoenix's own server closes a socket that sent nothing (not even a heartbeat) for 60 s; phoenix.js beats every 30 s.
IDLE_TIMEOUT = 60.0
_PROJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class JoinRefused(Exception):
    """A join answered with `phx_reply` `{status: "error", response: {reason}}`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_topic(topic: str) -> tuple[str | None, str]:
    """`ai_response:{project_id}:{channel_id}` or `ai_response:{channel_id}` → (project_id, channel_id), with the
    reasons ModelRiver's SDK knows when the topic is malformed."""
    if not topic.startswith(TOPIC_PREFIX):
        raise JoinRefused("unmatched topic")
    parts = topic[len(TOPIC_PREFIX) :].split(":")
    if len(parts) not in (1, 2) or not all(parts):
        raise JoinRefused("invalid_channel_format")
    project_id, channel_id = (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    if project_id is not None and not _PROJECT_ID.match(project_id):
        raise JoinRefused("invalid_project_uuid")
    try:
        uuid.UUID(channel_id)
    except ValueError:
        raise JoinRefused("invalid_channel_uuid") from None
    return project_id, channel_id


def parse_after(params: Any) -> int:
    after = params.get("after", 0) if isinstance(params, dict) else 0
    if after is None:
        return 0
    if isinstance(after, str) and after.isdigit():
        after = int(after)
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise JoinRefused("invalid_after")
    return after


@dataclass
class Joined:
    join_ref: str | None
    task: asyncio.Task[None]


class PhoenixSession:
    """One socket: its joined topics (each a task following one channel) and the frames the client sends.

    A join runs in a task of its own (it reads the store), as a Phoenix server runs each channel in its own process:
    the socket keeps answering heartbeats meanwhile. phoenix.js closes a socket whose heartbeat is not answered
    within its heartbeat interval, and with it the join's reply (tests/compat once lost one so)."""

    def __init__(self, websocket: WebSocket, gateway: Gateway, claims: dict[str, Any]) -> None:
        self.websocket = websocket
        self.gateway = gateway
        self.claims = claims
        self.joined: dict[str, Joined] = {}
        self.joining: dict[str, asyncio.Task[None]] = {}  # by topic: joins reading the store
        self._send_lock = asyncio.Lock()  # topic tasks and the receive loop share one socket

    async def send(self, frame: wire.Frame) -> None:
        async with self._send_lock:
            await self.websocket.send_text(frame.encode())

    async def run(self) -> None:
        try:
            while True:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    frame = wire.decode(message.get("text") or message.get("bytes") or b"")
                except wire.ProtocolError as exc:
                    await self.websocket.close(code=1003, reason=str(exc)[:120])
                    return
                await self.handle(frame)
        except (TimeoutError, WebSocketDisconnect):
            pass
        finally:
            tasks = [*self.joining.values(), *(joined.task for joined in self.joined.values())]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self.websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.websocket.close(code=1000)

    async def handle(self, frame: wire.Frame) -> None:
        if frame.topic == wire.PHOENIX_TOPIC and frame.event == wire.HEARTBEAT:
            await self.send(wire.reply(frame, "ok"))
        elif frame.event == wire.JOIN:
            self._cancel_join(frame.topic)  # a second join of a topic replaces the first
            self.joining[frame.topic] = asyncio.create_task(self._join(frame), name=f"sluice-phoenix-join-{frame.ref}")
        elif frame.event == wire.LEAVE:
            self._cancel_join(frame.topic)
            self.stop(frame.topic)
            await self.send(wire.reply(frame, "ok"))
        elif frame.topic not in self.joined:
            await self.send(wire.reply(frame, "error", {"reason": "unmatched topic"}))
        elif frame.event == wire.HEARTBEAT:  # ModelRiver's SDK beats on the channel too
            await self.send(wire.reply(frame, "ok"))
        else:
            await self.send(wire.reply(frame, "error", {"reason": f"unknown event {frame.event!r}"}))

    def _cancel_join(self, topic: str) -> None:
        pending = self.joining.pop(topic, None)
        if pending is not None:
            pending.cancel()

    async def _join(self, frame: wire.Frame) -> None:
        try:
            await self.join(frame)
        except asyncio.CancelledError:
            raise
        except Exception:  # the client went away mid-reply; the receive loop ends the session
            log.debug("join of %s stopped", frame.topic, exc_info=True)
        finally:
            if self.joining.get(frame.topic) is asyncio.current_task():
                del self.joining[frame.topic]

    def stop(self, topic: str) -> Joined | None:
        joined = self.joined.pop(topic, None)
        if joined is not None:
            joined.task.cancel()
        return joined

    async def join(self, frame: wire.Frame) -> None:
        try:
            project_id, channel_id = parse_topic(frame.topic)
            if self.claims.get("proj") and project_id is not None and project_id != self.claims["proj"]:
                raise JoinRefused("unauthorized_project_access")
            if self.claims.get("ch") != channel_id:
                raise JoinRefused("unauthorized_channel_access")
            after = parse_after(frame.payload)
            record = await self.gateway.store.get_request(channel_id)
            if record is None:
                raise JoinRefused("channel_not_found")
        except JoinRefused as refused:
            await self.send(wire.reply(frame, "error", {"reason": refused.reason}))
            return
        previous = self.stop(frame.topic)
        if previous is not None:  # a second join of a topic replaces the first, as on a Phoenix server
            await self.send(wire.close(previous.join_ref, frame.topic))
        workflow = self.gateway.catalog.workflow(record.workflow, record.project_id)
        echo_fields = workflow.echo_fields if workflow else ()
        event_name = (workflow.event if workflow else None) or (
            CALLBACK_EVENT if CALLBACK_EVENT in (record.body.get("events") or ()) else None
        )
        mapper = ResponseMapper(
            channel_id=channel_id,
            workflow=record.workflow,
            event_name=event_name,
            customer_data=customer_data(record.body, echo_fields),
        )
        await self.send(
            wire.reply(
                frame,
                "ok",
                {"channel_id": channel_id, "project_id": record.project_id, "status": record.status, "after": after},
            )
        )
        task = asyncio.create_task(
            self.follow(frame.topic, frame.join_ref, mapper, after), name=f"sluice-phoenix-{channel_id}"
        )
        self.joined[frame.topic] = Joined(join_ref=frame.join_ref, task=task)

    async def follow(self, topic: str, join_ref: str | None, mapper: ResponseMapper, after: int) -> None:
        """Push the channel's events to one joined topic until its terminal event, then close the topic."""
        try:
            try:
                await self._push_events(topic, join_ref, mapper, after)
            except SluiceError as exc:  # the channel cannot be read (e.g. gone from broker and store)
                await self.send(wire.push(join_ref, topic, "error", {"message": exc.message, "code": exc.code}))
            joined = self.joined.get(topic)
            if joined is not None and joined.join_ref == join_ref:
                del self.joined[topic]
                await self.send(wire.close(join_ref, topic))
        except asyncio.CancelledError:
            raise
        except Exception:  # the client went away mid-send; the receive loop ends the session
            log.debug("push to %s stopped", topic, exc_info=True)

    async def _push_events(self, topic: str, join_ref: str | None, mapper: ResponseMapper, after: int) -> None:
        heartbeat = self.gateway.settings.heartbeat_interval
        async for batch in self.gateway.follow(mapper.channel_id, after, heartbeat):
            for event in batch or ():  # None = nothing new for a while: Phoenix needs no server keep-alive
                if isinstance(event.event, StatusEvent) and event.event.status == AWAITING_CALLBACK:
                    await self._load_ai_result(mapper)
                for name, payload in mapper.feed(event):
                    await self.send(wire.push(join_ref, topic, name, payload))

    async def _load_ai_result(self, mapper: ResponseMapper) -> None:
        # No event carries the AI's own result. While the request awaits its callback the store holds it; once the
        # callback arrived (a late join) the store holds the enriched one, and the AI's is in the webhook sent for it.
        record = await self.gateway.store.get_request(mapper.channel_id)
        if record is not None and record.status == AWAITING_CALLBACK:
            mapper.ai_result(record.data, record.meta)
            return
        for delivery in await self.gateway.delivery.webhooks.list_deliveries(None, request_id=mapper.channel_id):
            if delivery.type == AI_GENERATED:
                ai_response = orjson.loads(delivery.body).get("ai_response") or {}
                mapper.ai_result(ai_response.get("data"), ai_response.get("meta"))
                return


@router.websocket("/socket/websocket")
async def phoenix_socket(websocket: WebSocket, token: str | None = None, vsn: str | None = None) -> None:
    """Phoenix Channels v2 JSON: `?token=<ws_token>&vsn=2.0.0`, then `phx_join` on `ai_response:{project}:{channel}`."""
    gateway = gateway_of(websocket)  # type: ignore[arg-type]
    offered: list[str] = list(websocket.scope.get("subprotocols") or [])
    token = token or wire.token_from_subprotocols(offered)
    claims: dict[str, Any] | None = None
    if token and vsn in (None, wire.VSN):
        try:
            claims = gateway.signer.read_ws_token(token)
        except TokenError:
            claims = None
    if claims is None:
        await websocket.close(code=1008)  # before accept: the handshake is refused (HTTP 403), as Phoenix does
        return
    await websocket.accept(subprotocol=wire.SUBPROTOCOL if wire.SUBPROTOCOL in offered else None)
    try:
        slot = await gateway.quotas.open_stream(claims.get("kid"))
    except SluiceError as exc:  # this key's streams are all open (429)
        await websocket.close(code=WS_CLOSE_CODES.get(exc.status_code, 4400), reason=exc.message[:120])
        return
    try:
        await PhoenixSession(websocket, gateway, claims).run()
    finally:
        await slot.release()
