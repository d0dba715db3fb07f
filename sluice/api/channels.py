"""Channel subscriptions: WebSocket `GET /v1/ws` and SSE `GET /v1/channels/{id}/events` (DESIGN.md §3)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from sluice.api.auth import gateway_of
from sluice.api.schemas import ERROR_RESPONSES
from sluice.api.streaming import channel_batches, parse_after
from sluice.errors import BadRequest, Forbidden, NotFound, SluiceError, Unauthorized
from sluice.events import utc_timestamp
from sluice.gateway import Gateway
from sluice.quotas import StreamSlot
from sluice.tokens import TokenError

router = APIRouter(tags=["channels"])

# WebSocket close codes: 4000 + the HTTP status the same mistake gets on the SSE path.
WS_CLOSE_CODES = {400: 4400, 401: 4401, 403: 4403, 404: 4404, 429: 4429}


async def authorise_channel(gateway: Gateway, channel_id: str, token: str | None, api_key: str | None) -> str | None:
    """A `ws_token` for this very channel, or an API key of the project that owns it. Returns the id of the API key
    the stream counts against (None when no key is known: a token issued without one)."""
    if token:
        try:
            claims = gateway.signer.read_ws_token(token)
        except TokenError as exc:
            raise Unauthorized(str(exc), code="token_expired" if exc.expired else "invalid_token") from exc
        if claims["ch"] != channel_id:
            raise Forbidden("this ws_token is for another channel", code="wrong_channel")
        return claims.get("kid")
    if api_key:
        principal = await gateway.authenticate(api_key)
        if principal is None:
            raise Unauthorized("the API key is not valid (unknown or revoked)", code="invalid_api_key")
        record = await gateway.store.get_request(channel_id)
        if record is None or (record.project_id != principal.project_id and not principal.operator):
            raise NotFound(f"no channel {channel_id!r}", code="channel_not_found")
        return principal.key_id
    raise Unauthorized("pass the ws_token as ?token=… (or an API key as a bearer token)", code="missing_token")


async def already_finished(gateway: Gateway, channel_id: str, after: int) -> bool:
    """True if the client has seen the terminal event already (or the channel does not exist: raises 404)."""
    info = await gateway.broker.log_info(channel_id)
    if info is not None:
        return info.finished and after >= info.last_seq
    record = await gateway.store.get_request(channel_id)
    if record is None:
        raise NotFound(f"no channel {channel_id!r}", code="channel_not_found")
    return record.finished and record.terminal_seq is not None and after >= record.terminal_seq


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


@router.websocket("/v1/ws")
async def channel_socket(
    websocket: WebSocket,
    channel_id: str | None = None,
    token: str | None = None,
    after: str | None = None,
    vsn: str | None = None,
) -> None:
    """Events of one channel as JSON text frames: the ones after `after`, then live ones; closed after the terminal
    event. `{"type": "heartbeat"}` frames (no `seq`) keep an idle connection alive."""
    if vsn is not None:  # a Phoenix client given this URL (ModelRiver's SDK appends /socket/websocket?…&vsn=2.0.0)
        from sluice.api.phoenix import phoenix_socket

        return await phoenix_socket(websocket, token, vsn)
    gateway = gateway_of(websocket)  # type: ignore[arg-type]
    await websocket.accept()
    try:
        if not channel_id:
            raise BadRequest("pass ?channel_id=…", code="missing_channel_id")
        try:
            start = parse_after(after)
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_after") from exc
        key_id = await authorise_channel(gateway, channel_id, token, _bearer(websocket.headers.get("authorization")))
        await already_finished(gateway, channel_id, start)
        slot = await gateway.quotas.open_stream(key_id)
    except SluiceError as exc:
        await websocket.close(code=WS_CLOSE_CODES.get(exc.status_code, 4400), reason=exc.message[:120])
        return
    try:
        await _follow(websocket, gateway, channel_id, start)
    finally:
        await slot.release()


async def _follow(websocket: WebSocket, gateway: Gateway, channel_id: str, start: int) -> None:
    sender = asyncio.create_task(_send_events(websocket, gateway, channel_id, start))
    receiver = asyncio.create_task(_wait_for_disconnect(websocket))
    done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    for task in (sender, receiver):
        if task not in done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if sender in done and sender.exception() is None:
        with contextlib.suppress(Exception):
            await websocket.close(code=1000)


async def _send_events(websocket: WebSocket, gateway: Gateway, channel_id: str, after: int) -> None:
    heartbeat = gateway.settings.heartbeat_interval
    async for batch in channel_batches(gateway, channel_id, after, heartbeat):
        if batch is None:
            await websocket.send_text(f'{{"type":"heartbeat","ts":"{utc_timestamp()}"}}')
            continue
        for event in batch:
            await websocket.send_text(event.data)


async def _wait_for_disconnect(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


@router.get(
    "/v1/channels/{channel_id}/events",
    responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}, "description": "The channel's events"},
               204: {"description": "The client has already received the terminal event"}},
)
async def channel_events(
    request: Request,
    channel_id: str,
    token: Annotated[str | None, Query(description="The channel's ws_token.")] = None,
    after: Annotated[str | None, Query(description="The last seq received; only later events are sent.")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """The same events as the WebSocket, as Server-Sent Events (`id:` is the seq, so `Last-Event-ID` resumes)."""
    gateway = gateway_of(request)
    try:
        start = parse_after(last_event_id if last_event_id is not None else after)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_after") from exc
    key_id = await authorise_channel(gateway, channel_id, token, _bearer(authorization))
    if await already_finished(gateway, channel_id, start):
        return Response(status_code=204)  # tells EventSource to stop reconnecting
    return sse_response(sse_stream(gateway, channel_id, start), await gateway.quotas.open_stream(key_id))


async def sse_stream(gateway: Gateway, channel_id: str, after: int) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    async for batch in channel_batches(gateway, channel_id, after, gateway.settings.heartbeat_interval):
        if batch is None:
            yield b": heartbeat\n\n"
            continue
        yield b"".join(b"id: %d\ndata: %s\n\n" % (event.seq, event.data.encode()) for event in batch)


def sse_response(stream: AsyncIterator[bytes], slot: StreamSlot | None = None) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return _SlotStream(stream, media_type="text/event-stream", headers=headers, slot=slot or StreamSlot())


class _SlotStream(StreamingResponse):
    """Gives the stream's slot back however the response ends (finished, client gone, error)."""

    def __init__(self, *args: Any, slot: StreamSlot, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.slot.release()
