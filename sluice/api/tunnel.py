"""`GET /v1/forward` (WebSocket): the gateway end of `sluice forward`.

The CLI authenticates with an API key (`Authorization: Bearer …`); the session counts as an API call against the
key's rate limit and holds one of its streams while it lasts (`SLUICE_RATE_LIMIT`, `SLUICE_MAX_CONCURRENT_STREAMS`:
close 4429 past either, and the CLI tries again). The server sends `{"type": "ready", "session_id"}`,
then one `{"type": "webhook", "id", "delivery_id", "event_type", "headers", "body"}` per forwarded webhook; the CLI
answers each with `{"type": "webhook_response", "id", "status", "body"}` (or `"error"` when the local URL failed).
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from sluice.api.auth import bearer_key, gateway_of, principal_for
from sluice.api.channels import WS_CLOSE_CODES
from sluice.delivery.tunnel import ForwardSession
from sluice.errors import SluiceError

router = APIRouter(tags=["forward"])


@router.websocket("/v1/forward")
async def forward_socket(websocket: WebSocket) -> None:
    gateway = gateway_of(websocket)  # type: ignore[arg-type]
    api_key = bearer_key(websocket.headers.get("authorization"))
    await websocket.accept()
    try:
        principal = await principal_for(gateway, api_key)
        slot = await gateway.quotas.open_stream(principal.key_id)
    except SluiceError as exc:  # 401: no key or not a valid one; 429: over the key's rate or stream limit
        await websocket.close(code=WS_CLOSE_CODES.get(exc.status_code, 4400), reason=exc.message[:120])
        return

    async def send(message: dict[str, Any]) -> None:
        await websocket.send_text(orjson.dumps(message).decode())

    session = ForwardSession(project_id=principal.project_id, send=send)
    await gateway.delivery.hub.register(session)
    try:
        await send({"type": "ready", "session_id": session.id, "project_id": principal.project_id})
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if not text:
                continue
            with contextlib.suppress(orjson.JSONDecodeError):
                payload = orjson.loads(text)
                if isinstance(payload, dict) and payload.get("type") == "webhook_response":
                    session.answer(payload)
    except WebSocketDisconnect:
        return
    finally:
        await gateway.delivery.hub.unregister(session)
        await slot.release()
