"""Channel subscriptions: WebSocket `GET /v1/ws` and SSE `GET /v1/channels/{id}/events` (DESIGN.md §3), both served
before FastAPI's layers (`sluice.api.hotpath`), each subscriber sent to from its connection's own task."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from sluice.api.auth import bearer_key, gateway_of, principal_for
from sluice.api.errors import error_response_at
from sluice.api.schemas import ERROR_RESPONSES
from sluice.api.wsframes import DirectFrames
from sluice.channel.reader import parse_after
from sluice.errors import BadRequest, Forbidden, NotFound, SluiceError, Unauthorized
from sluice.events import utc_timestamp
from sluice.gateway import Gateway
from sluice.observability.logging import request_id
from sluice.quotas import StreamSlot
from sluice.tokens import TokenError

router = APIRouter(tags=["channels"])

# WebSocket close codes: 4000 + the HTTP status the same mistake gets on the SSE path.
WS_CLOSE_CODES = {400: 4400, 401: 4401, 403: 4403, 404: 4404, 429: 4429}


async def authorise_channel(gateway: Gateway, channel_id: str, token: str | None, api_key: str | None) -> str | None:
    """A `ws_token` for this very channel, or an API key of the project that owns it (counted as an API call against
    SLUICE_RATE_LIMIT). Returns the id of the API key the stream counts against (None when no key is known: a token
    issued without one)."""
    if token:
        try:
            claims = gateway.signer.read_ws_token(token)
        except TokenError as exc:
            raise Unauthorized(str(exc), code="token_expired" if exc.expired else "invalid_token") from exc
        if claims["ch"] != channel_id:
            raise Forbidden("this ws_token is for another channel", code="wrong_channel")
        return claims.get("kid")
    if api_key:
        principal = await principal_for(gateway, api_key)  # a socket opened with an API key is an API call (rate)
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


async def channel_socket(websocket: WebSocket) -> None:
    """`GET /v1/ws?channel_id=…&token=…[&after=seq]`: events of one channel as JSON text frames: the ones after
    `after`, then live ones; closed after the terminal event. `{"type": "heartbeat"}` frames (no `seq`) keep an idle
    connection alive."""
    # Served bare (see `SluiceAPI`): FastAPI's dependency solving and middleware keep objects alive for the
    # connection's whole life (exit stacks, a second WebSocket, ~15 suspended middleware frames): ~10 KB per idle
    # subscriber.
    params = websocket.query_params
    token, vsn = params.get("token"), params.get("vsn")
    if vsn is not None:  # a Phoenix client given this URL (ModelRiver's SDK appends /socket/websocket?…&vsn=2.0.0)
        from sluice.api.phoenix import phoenix_socket

        return await phoenix_socket(websocket, token, vsn)
    gateway = gateway_of(websocket)  # type: ignore[arg-type]
    await websocket.accept()
    try:
        channel_id = params.get("channel_id")
        if not channel_id:
            raise BadRequest("pass ?channel_id=…", code="missing_channel_id")
        try:
            start = parse_after(params.get("after"))
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_after") from exc
        key_id = await authorise_channel(gateway, channel_id, token, bearer_key(websocket.headers.get("authorization")))
        await already_finished(gateway, channel_id, start)
        slot = await gateway.quotas.open_stream(key_id)
    except SluiceError as exc:
        await _close(websocket, exc)
        return
    try:
        await _follow(websocket, gateway, channel_id, start)
    finally:
        await slot.release()


@router.websocket("/v1/ws", name="channel_socket")
async def channel_socket_route(
    websocket: WebSocket,
    channel_id: str | None = None,
    token: str | None = None,
    after: str | None = None,
    vsn: str | None = None,
) -> None:
    # `SluiceAPI` (sluice/api/hotpath.py) serves `/v1/ws` before FastAPI; this declaration documents it in
    # `/openapi.json` with its query parameters (sluice/api/openapi.py), and serves it where the hot path is off.
    await channel_socket(websocket)


channel_socket_route.__doc__ = channel_socket.__doc__


async def _close(websocket: WebSocket, exc: SluiceError) -> None:
    await websocket.close(code=WS_CLOSE_CODES.get(exc.status_code, 4400), reason=exc.message[:120])


async def _follow(websocket: WebSocket, gateway: Gateway, channel_id: str, start: int) -> None:
    """Sends the channel's events from the connection's own task (no task of its own per subscriber), while a
    `Departure` watches for the client leaving and interrupts the sending when it does."""
    task = asyncio.current_task()
    assert task is not None
    departure = Departure(websocket.receive, task)
    try:
        await _send_events(websocket, gateway, channel_id, start)
    except asyncio.CancelledError:
        if not departure.left:
            raise
        task.uncancel()  # our own interruption, not the server's: the client left, there is nobody to close
        return
    except WebSocketDisconnect:  # a send found the client gone
        return
    except SluiceError as exc:  # the channel vanished (see `channel_batches`)
        departure.stop()
        with contextlib.suppress(Exception):
            await _close(websocket, exc)
        return
    finally:
        departure.stop()
    with contextlib.suppress(Exception):
        await websocket.close(code=1000)


async def _send_events(websocket: WebSocket, gateway: Gateway, channel_id: str, after: int) -> None:
    send = websocket.send
    direct = DirectFrames.of(websocket)  # frames built once per event, one write per batch (sluice/api/wsframes.py)
    async for batch in gateway.follow(channel_id, after):
        if batch is None:
            await send({"type": "websocket.send", "text": f'{{"type":"heartbeat","ts":"{utc_timestamp()}"}}'})
        elif direct is not None:
            await direct.write(batch)
        else:
            for event in batch:
                await send({"type": "websocket.send", "text": event.data})  # encoded once, by the broker
    # The append that brought the terminal event woke every subscriber of the channel: let them all send it before
    # this one spends time closing, so the last subscriber does not wait for the others' teardown.
    await asyncio.sleep(0)


class Departure:
    """Notices the client leaving: one `receive()` running as a bare task, whose done-callback interrupts (cancels)
    the sending task. Cheaper than a receive loop in a task of its own, which `asyncio.wait`-ed against the sender
    cost one more task and coroutine per connection. Anything the client sends is read and ignored. `receive` is a
    WebSocket's, or an HTTP request's ASGI `receive` (whose body, a GET's empty one, comes first)."""

    __slots__ = ("_active", "_receive", "_receiving", "_sender", "left")

    def __init__(self, receive: Callable[[], Awaitable[Message]], sender: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._sender = sender
        self._active = True
        self.left = False
        self._receiving = self._listen()

    def _listen(self) -> asyncio.Future[Message]:
        receiving = asyncio.ensure_future(self._receive())
        receiving.add_done_callback(self._received)
        return receiving

    def _received(self, receiving: asyncio.Future[Message]) -> None:
        if receiving.cancelled():
            return
        failed = receiving.exception() is not None  # retrieved in any case, so asyncio does not log it
        if not self._active:
            return
        if not failed and receiving.result()["type"] not in _DISCONNECTS:
            self._receiving = self._listen()
            return
        self.left = True
        self._active = False
        self._sender.cancel()

    def stop(self) -> None:
        """The sending is over: never interrupt it from now on. The pending `receive()` is not cancelled (an exception
        through three frames, per connection): closing the socket, the response's end, or the server losing the
        connection queues the disconnect that ends it."""
        self._active = False


_DISCONNECTS = frozenset({"websocket.disconnect", "http.disconnect"})


@router.get(
    "/v1/channels/{channel_id}/events",
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"text/event-stream": {}}, "description": "The channel's events"},
        204: {"description": "The client has already received the terminal event"},
    },
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
    # `SluiceAPI` (sluice/api/hotpath.py) serves this before FastAPI (`serve_channel_events`); this declaration
    # documents it in `/openapi.json`, and serves it where the hot path is off.
    return await events_response(gateway_of(request), channel_id, token, after, last_event_id, authorization)


async def serve_channel_events(scope: Scope, receive: Receive, send: Send) -> None:
    """`GET /v1/channels/{id}/events` without FastAPI's layers, as `/v1/ws` is served: a subscriber holds its
    connection for minutes, and every layer's frame, the request object and the dependency exit stacks live as long."""
    channel_id = scope["path"].removeprefix(CHANNELS_PREFIX).removesuffix(EVENTS_SUFFIX)
    params, headers = QueryParams(scope["query_string"]), Headers(scope=scope)
    try:
        response = await events_response(
            scope["app"].state.gateway,
            channel_id,
            params.get("token"),
            params.get("after"),
            headers.get("last-event-id"),
            headers.get("authorization"),
        )
    except SluiceError as exc:
        headers_of_error = getattr(exc, "headers", None)  # Retry-After of a 429
        response = error_response_at(scope["path"], exc.status_code, exc.code, exc.message, headers_of_error)
    current = request_id.get()  # set by `serve_subscriber`, as RequestIdMiddleware sets it for FastAPI's routes
    if current:
        response.headers.setdefault("x-request-id", current)
    await response(scope, receive, send)


CHANNELS_PREFIX, EVENTS_SUFFIX = "/v1/channels/", "/events"


def is_channel_events(scope: Scope) -> bool:
    """A `GET /v1/channels/{id}/events` (one path segment for the id)."""
    path: str = scope["path"]
    if scope["method"] != "GET" or not path.startswith(CHANNELS_PREFIX) or not path.endswith(EVENTS_SUFFIX):
        return False
    channel_id = path[len(CHANNELS_PREFIX) : -len(EVENTS_SUFFIX)]
    return bool(channel_id) and "/" not in channel_id


async def events_response(
    gateway: Gateway,
    channel_id: str,
    token: str | None,
    after: str | None,
    last_event_id: str | None,
    authorization: str | None,
) -> Response:
    """The answer to `GET /v1/channels/{id}/events`: the stream, or 204 to a client that has seen the end; a refusal
    raises (400, 401, 403, 404, 429)."""
    try:
        start = parse_after(last_event_id if last_event_id is not None else after)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_after") from exc
    key_id = await authorise_channel(gateway, channel_id, token, bearer_key(authorization))
    if await already_finished(gateway, channel_id, start):
        return Response(status_code=204)  # tells EventSource to stop reconnecting
    return ChannelEvents(gateway, channel_id, start, await gateway.quotas.open_stream(key_id))


class ChannelEvents(Response):
    """A channel's events as Server-Sent Events, sent from the connection's own task while a `Departure` watches for
    the client leaving — the `/v1/ws` subscriber's shape, so an idle SSE subscriber holds what an idle WebSocket one
    does (bench/fanout.py measures both). Gives the stream slot back however the stream ends."""

    media_type = "text/event-stream"

    def __init__(self, gateway: Gateway, channel_id: str, after: int, slot: StreamSlot) -> None:
        self.gateway = gateway
        self.channel_id = channel_id
        self.after = after
        self.slot = slot
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        departure = Departure(receive, task)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in sse_stream(self.gateway, self.channel_id, self.after):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not departure.left:
                raise
            task.uncancel()  # our own interruption, not the server's: the client left, there is nobody to answer
        except SluiceError:  # the channel vanished from broker and store (see `channel_batches`): end the stream
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            departure.stop()
            await self.slot.release()


async def sse_stream(gateway: Gateway, channel_id: str, after: int) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    async for batch in gateway.follow(channel_id, after):
        if batch is None:
            yield b": heartbeat\n\n"
            continue
        yield b"".join(b"id: %d\ndata: %s\n\n" % (event.seq, event.data.encode()) for event in batch)


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_response(stream: AsyncIterator[bytes], slot: StreamSlot | None = None) -> StreamingResponse:
    return _SlotStream(stream, media_type="text/event-stream", headers=SSE_HEADERS, slot=slot or StreamSlot())


class _SlotStream(StreamingResponse):
    """Gives the stream's slot back however the response ends (finished, client gone, error).

    Streams in the serving task, with one plain asyncio task that listens for the client's disconnect and then
    cancels the stream (uvicorn drops writes to a closed connection silently, so the disconnect must be listened
    for). Starlette does the same with an anyio task group, which costs more per response than the stream's first
    write: this is the hot path of every streamed completion."""

    def __init__(self, *args: Any, slot: StreamSlot, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None
        listener = asyncio.create_task(_cancel_on_disconnect(receive, streaming))
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if not (listener.done() and not listener.cancelled() and listener.exception() is None):
                raise  # not the client's leaving: the server is shutting down, or the caller gave up
            streaming.uncancel()  # the client left: the stream is over, the response with it
            # Closed now, not when it is collected: its end stops the run the client was reading (`faces.rendered`).
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()
        finally:
            listener.cancel()
            await self.slot.release()


async def _cancel_on_disconnect(receive: Receive, streaming: asyncio.Task[Any]) -> None:
    """Waits for the client's disconnect, then cancels the streaming task (the listener then ends normally)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    streaming.cancel()
