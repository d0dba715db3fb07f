"""Durable records of webhooks: per-project secrets and settings, deliveries with their attempts, callback waits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.lifecycle.states import AWAITING_CALLBACK, TERMINAL, sources
from sluice.store.schema import (
    callback_waits,
    requests,
    webhook_attempts,
    webhook_deliveries,
    webhook_secrets,
    webhook_settings,
)
from sluice.store.store import as_utc, now, utc_values


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    project_id: str
    request_id: str
    type: str
    url: str
    body: str
    status: str  # pending | delivered | failed (dead letter)
    attempts: int
    next_attempt_at: datetime | None
    locked_until: datetime | None
    last_status_code: int | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> DeliveryRecord:
        return cls(**utc_values(row, "next_attempt_at", "locked_until", "created_at", "finished_at"))


@dataclass(frozen=True)
class CallbackWait:
    request_id: str
    project_id: str
    token_hash: str
    state: str  # waiting | received | timed_out | cancelled
    on_timeout: str
    expires_at: datetime
    result: dict[str, Any] | None
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> CallbackWait:
        return cls(**utc_values(row, "expires_at", "created_at", "resolved_at"))


class SecretSealer(Protocol):
    """Seals webhook signing secrets for storage and opens them again (`sluice.delivery.secrets.SecretBox`)."""

    def seal(self, secret: str) -> str: ...

    def open(self, stored: str) -> str | None:
        """The plaintext secret, or None if it cannot be opened (sealed under another SLUICE_SECRET_KEY)."""
        ...


class WebhookStore:
    def __init__(self, engine: AsyncEngine, sealer: SecretSealer | None = None) -> None:
        self.engine = engine
        self.sealer = sealer  # signing secrets are sealed at rest when set (the gateway always sets it)

    def _seal(self, secret: str) -> str:
        return self.sealer.seal(secret) if self.sealer is not None else secret

    def _open(self, stored: str) -> str | None:
        return self.sealer.open(stored) if self.sealer is not None else stored

    # secrets and settings ----------------------------------------------------------------------------------------

    async def active_secrets(self, project_id: str) -> list[str]:
        """Secrets to sign with, newest first: the current one plus any still inside a rotation's overlap window."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(webhook_secrets.c.secret, webhook_secrets.c.expires_at)
                    .where(webhook_secrets.c.project_id == project_id)
                    .order_by(webhook_secrets.c.created_at.desc())
                )
            ).all()
        moment = now()
        found = [self._open(row.secret) for row in rows if row.expires_at is None or _after(row.expires_at, moment)]
        return [secret for secret in found if secret is not None]

    async def add_secret(self, project_id: str, secret: str, *, overlap: float) -> tuple[str, datetime]:
        """Make `secret` the current one; the previous ones stay valid for `overlap` seconds."""
        moment = now()
        until = moment + timedelta(seconds=overlap)
        secret_id = f"whs_{uuid.uuid4().hex[:16]}"
        async with self.engine.begin() as conn:
            await conn.execute(
                webhook_secrets.update()
                .where(
                    webhook_secrets.c.project_id == project_id,
                    sa.or_(webhook_secrets.c.expires_at.is_(None), webhook_secrets.c.expires_at > until),
                )
                .values(expires_at=until)
            )
            await conn.execute(
                webhook_secrets.insert().values(
                    id=secret_id, project_id=project_id, secret=self._seal(secret), created_at=moment, expires_at=None
                )
            )
        return secret_id, until

    async def ensure_secret(self, project_id: str, secret: str) -> list[str]:
        """The active secrets, after storing `secret` as the first one if the project has none yet."""
        found = await self.active_secrets(project_id)
        if found:
            return found
        async with self.engine.begin() as conn:
            await conn.execute(
                webhook_secrets.insert().values(
                    id=f"whs_{uuid.uuid4().hex[:16]}",
                    project_id=project_id,
                    secret=self._seal(secret),
                    created_at=now(),
                )
            )
        return await self.active_secrets(project_id)

    async def list_secrets(self, project_id: str) -> list[dict[str, Any]]:
        """Secret metadata only: the plaintext is shown once, when it is created."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(webhook_secrets.c.id, webhook_secrets.c.created_at, webhook_secrets.c.expires_at)
                    .where(webhook_secrets.c.project_id == project_id)
                    .order_by(webhook_secrets.c.created_at.desc())
                )
            ).all()
        return [{"id": r.id, "created_at": as_utc(r.created_at), "expires_at": as_utc(r.expires_at)} for r in rows]

    async def allow_private_urls(self, project_id: str) -> bool:
        async with self.engine.connect() as conn:
            value = await conn.scalar(
                sa.select(webhook_settings.c.allow_private_urls).where(webhook_settings.c.project_id == project_id)
            )
        return bool(value)

    async def set_allow_private_urls(self, project_id: str, allow: bool) -> None:
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                webhook_settings.update()
                .where(webhook_settings.c.project_id == project_id)
                .values(allow_private_urls=allow, updated_at=now())
            )
            if updated.rowcount == 0:
                await conn.execute(
                    webhook_settings.insert().values(project_id=project_id, allow_private_urls=allow, updated_at=now())
                )

    # deliveries ----------------------------------------------------------------------------------------------------

    def delivery_row(
        self, *, project_id: str, request_id: str, type: str, url: str, body: str, lease: float
    ) -> dict[str, Any]:
        moment = now()
        return {
            "id": f"msg_{uuid.uuid4().hex}",
            "project_id": project_id,
            "request_id": request_id,
            "type": type,
            "url": url,
            "body": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": moment,
            "locked_until": moment + timedelta(seconds=lease),
            "created_at": moment,
        }

    async def create_delivery(
        self, *, project_id: str, request_id: str, type: str, url: str, body: str, lease: float
    ) -> str:
        values = self.delivery_row(
            project_id=project_id, request_id=request_id, type=type, url=url, body=body, lease=lease
        )
        async with self.engine.begin() as conn:
            await conn.execute(webhook_deliveries.insert().values(**values))
        return values["id"]

    async def begin_callback(
        self,
        *,
        request_id: str,
        project_id: str,
        token_hash: str,
        on_timeout: str,
        expires_at: datetime,
        data: Any,
        meta: dict[str, Any],
        delivery: dict[str, Any],
        lease: float,
    ) -> str | None:
        """In one transaction: the request moves to `awaiting_callback` keeping the AI result, the wait and the
        webhook delivery are recorded. A crash before this commits leaves the request to be re-run by recovery.
        None (nothing written) if the request is no longer running: it ended meanwhile (cancelled)."""
        values = self.delivery_row(project_id=project_id, request_id=request_id, lease=lease, **delivery)
        async with self.engine.begin() as conn:
            moved = await conn.execute(
                requests.update()
                .where(requests.c.id == request_id, requests.c.status.in_(sources(AWAITING_CALLBACK)))
                .values(status=AWAITING_CALLBACK, data=data, meta=meta)
            )
            if not moved.rowcount:
                return None
            await conn.execute(
                callback_waits.insert().values(
                    request_id=request_id,
                    project_id=project_id,
                    token_hash=token_hash,
                    state="waiting",
                    on_timeout=on_timeout,
                    expires_at=expires_at,
                    created_at=now(),
                )
            )
            await conn.execute(webhook_deliveries.insert().values(**values))
        return values["id"]

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id))
            ).first()
        return DeliveryRecord.from_row(row) if row else None

    async def list_deliveries(
        self, project_id: str | None, *, status: str | None = None, request_id: str | None = None, limit: int = 50
    ) -> list[DeliveryRecord]:
        query = sa.select(webhook_deliveries).order_by(webhook_deliveries.c.created_at.desc()).limit(limit)
        if project_id is not None:
            query = query.where(webhook_deliveries.c.project_id == project_id)
        if status is not None:
            query = query.where(webhook_deliveries.c.status == status)
        if request_id is not None:
            query = query.where(webhook_deliveries.c.request_id == request_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [DeliveryRecord.from_row(row) for row in rows]

    async def list_attempts(self, delivery_id: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(webhook_attempts)
                    .where(webhook_attempts.c.delivery_id == delivery_id)
                    .order_by(webhook_attempts.c.id)
                )
            ).all()
        hidden = ("id", "delivery_id")
        return [{k: v for k, v in utc_values(row, "started_at").items() if k not in hidden} for row in rows]

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        attempt: int,
        status_code: int | None,
        error: str | None,
        latency_ms: float,
        response_excerpt: str | None,
        via: str,
        started_at: datetime,
        status: str,
        next_attempt_at: datetime | None,
        locked_until: datetime | None,
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                webhook_attempts.insert().values(
                    delivery_id=delivery_id,
                    attempt=attempt,
                    status_code=status_code,
                    error=error,
                    latency_ms=latency_ms,
                    response_excerpt=response_excerpt,
                    via=via,
                    started_at=started_at,
                )
            )
            await conn.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.id == delivery_id)
                .values(
                    status=status,
                    attempts=attempt,
                    last_status_code=status_code,
                    next_attempt_at=next_attempt_at,
                    locked_until=locked_until,
                    finished_at=None if status == "pending" else now(),
                )
            )

    async def extend_lock(self, delivery_id: str, until: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                webhook_deliveries.update().where(webhook_deliveries.c.id == delivery_id).values(locked_until=until)
            )

    async def claim_stale(self, *, lease: float, limit: int = 100) -> list[str]:
        """Pending deliveries whose owner stopped (its lease ran out): take them over, one owner each."""
        moment = now()
        async with self.engine.connect() as conn:
            ids = (
                (
                    await conn.execute(
                        sa.select(webhook_deliveries.c.id)
                        .where(
                            webhook_deliveries.c.status == "pending",
                            sa.or_(
                                webhook_deliveries.c.locked_until.is_(None), webhook_deliveries.c.locked_until < moment
                            ),
                        )
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
        claimed = []
        for delivery_id in ids:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    webhook_deliveries.update()
                    .where(
                        webhook_deliveries.c.id == delivery_id,
                        webhook_deliveries.c.status == "pending",
                        sa.or_(webhook_deliveries.c.locked_until.is_(None), webhook_deliveries.c.locked_until < moment),
                    )
                    .values(locked_until=moment + timedelta(seconds=lease))
                )
            if result.rowcount:
                claimed.append(delivery_id)
        return claimed

    async def replay(self, delivery_id: str, *, lease: float) -> bool:
        """Send a delivery again (same webhook-id, fresh timestamp and signature); False if one is in flight."""
        moment = now()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                webhook_deliveries.update()
                .where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.status != "pending",
                )
                .values(
                    status="pending",
                    next_attempt_at=moment,
                    locked_until=moment + timedelta(seconds=lease),
                    finished_at=None,
                )
            )
        return bool(result.rowcount)

    async def purge_finished(self, before: datetime) -> int:
        """Forget deliveries (delivered or dead-lettered) that finished before `before`, with their attempts."""
        finished = sa.select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.status != "pending", webhook_deliveries.c.finished_at < before
        )
        async with self.engine.begin() as conn:
            await conn.execute(webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(finished)))
            result = await conn.execute(
                webhook_deliveries.delete().where(
                    webhook_deliveries.c.status != "pending", webhook_deliveries.c.finished_at < before
                )
            )
        return result.rowcount or 0

    # callback waits --------------------------------------------------------------------------------------------------

    async def get_wait(self, request_id: str) -> CallbackWait | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(callback_waits).where(callback_waits.c.request_id == request_id))
            ).first()
        return CallbackWait.from_row(row) if row else None

    async def resolve_wait(
        self,
        request_id: str,
        *,
        state: str,
        result: dict[str, Any],
        unexpired_at: datetime | None = None,
        expired_at: datetime | None = None,
    ) -> bool:
        """Move a waiting callback to its final state, at most once across every instance (a conditional update)."""
        conditions = [callback_waits.c.request_id == request_id, callback_waits.c.state == "waiting"]
        if unexpired_at is not None:
            conditions.append(callback_waits.c.expires_at > unexpired_at)
        if expired_at is not None:
            conditions.append(callback_waits.c.expires_at <= expired_at)
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                callback_waits.update().where(*conditions).values(state=state, result=result, resolved_at=now())
            )
        return bool(updated.rowcount)

    async def overdue_waits(self, moment: datetime) -> list[str]:
        async with self.engine.connect() as conn:
            return list(
                (
                    await conn.execute(
                        sa.select(callback_waits.c.request_id).where(
                            callback_waits.c.state == "waiting", callback_waits.c.expires_at <= moment
                        )
                    )
                )
                .scalars()
                .all()
            )

    async def waits_in_progress(self) -> list[CallbackWait]:
        """Waits whose request has not finished: still waiting, or resolved but the terminal event not yet written;
        and resolved waits whose request recorded its end but never announced it (the gateway died in between)."""
        unannounced = sa.and_(
            callback_waits.c.state != "waiting", requests.c.status.in_(TERMINAL), requests.c.terminal_seq.is_(None)
        )
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(callback_waits)
                    .join(requests, requests.c.id == callback_waits.c.request_id)
                    .where(sa.or_(requests.c.status == AWAITING_CALLBACK, unannounced))
                )
            ).all()
        return [CallbackWait.from_row(row) for row in rows]


def _after(stored: datetime, moment: datetime) -> bool:
    """Whether a stored timestamp (naive from SQLite, aware from PostgreSQL) is later than `moment`."""
    aware = as_utc(stored)
    return aware is not None and aware > moment
