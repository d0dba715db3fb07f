"""The gateway side of `sluice forward`: connected forward sessions, per project, and delivery through them.

A forward session is a WebSocket opened by the CLI with an API key. A webhook marked "forwarded" is sent down the
socket as one `webhook` message; the CLI posts it to its local URL and answers with a `webhook_response` carrying
the local status and body, which counts as the delivery attempt's result. Sessions live in the process that holds
the socket; with several gateway instances a forwarded webhook is delivered by the instance the CLI is connected to
only if that instance picks it up (see docs/webhooks.md).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]


class ForwardUnavailable(Exception):
    """No forward session can take the webhook now (none connected, or it went away mid-delivery)."""


@dataclass
class ForwardSession:
    project_id: str
    send: Send
    id: str = field(default_factory=lambda: f"fwd_{uuid.uuid4().hex[:12]}")
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, message: dict[str, Any]) -> None:
        future = self.pending.pop(str(message.get("id")), None)
        if future is not None and not future.done():
            future.set_result(message)

    def close(self) -> None:
        self.closed.set()
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ForwardUnavailable("the forward session disconnected during the delivery"))
        self.pending.clear()


class ForwardHub:
    def __init__(self) -> None:
        self._sessions: dict[str, list[ForwardSession]] = {}
        self.changed = asyncio.Condition()

    def sessions(self, project_id: str) -> list[ForwardSession]:
        return list(self._sessions.get(project_id, ()))

    async def register(self, session: ForwardSession) -> None:
        self._sessions.setdefault(session.project_id, []).append(session)
        async with self.changed:
            self.changed.notify_all()

    async def unregister(self, session: ForwardSession) -> None:
        session.close()
        sessions = self._sessions.get(session.project_id, [])
        if session in sessions:
            sessions.remove(session)
        async with self.changed:
            self.changed.notify_all()

    async def deliver(self, project_id: str, message: dict[str, Any], *, wait: float) -> dict[str, Any]:
        """Send one webhook through the newest session of the project; its `webhook_response` message."""
        sessions = self._sessions.get(project_id)
        if not sessions:
            raise ForwardUnavailable("no `sluice forward` session is connected for this project")
        session = sessions[-1]
        message_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        session.pending[message_id] = future
        try:
            try:
                await session.send({**message, "type": "webhook", "id": message_id})
            except Exception as exc:  # whatever the socket layer raises once the peer is gone
                raise ForwardUnavailable(f"the forward session went away: {type(exc).__name__}") from exc
            async with asyncio.timeout(wait):
                return await future
        finally:
            session.pending.pop(message_id, None)
