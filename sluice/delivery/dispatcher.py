"""At-least-once webhook delivery: signed attempts on a bounded exponential schedule with jitter, every attempt
recorded, a dead letter after the last one.

Each delivery is owned by one task that holds a lease in the store (`locked_until`) while it waits and sends. If the
process dies, the lease runs out and a periodic sweep (in any instance) takes the delivery over, so a webhook
accepted into the store is attempted until it succeeds or the schedule is exhausted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx

from sluice.delivery.egress import webhook_client
from sluice.delivery.hints import refusal
from sluice.delivery.signing import generate_secret, modelriver_headers, signature_headers
from sluice.delivery.tunnel import ForwardHub, ForwardUnavailable
from sluice.delivery.urlguard import Resolver, UrlRefused, parse_webhook_url, resolve
from sluice.store.deliveries import DeliveryRecord, WebhookStore
from sluice.store.store import now

log = logging.getLogger("sluice.webhooks")

# ModelRiver's schedule: 8 attempts over ~3 h 42 min (delays before attempts 1..8).
DEFAULT_SCHEDULE = (0.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0)
FORWARD_TARGET = "forward"
EXCERPT_CHARS = 1000
USER_AGENT = "Sluice-Webhooks/1"


@dataclass(frozen=True)
class DeliveryConfig:
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    timeout: float = 30.0
    jitter: float = 0.1  # each delay is stretched or shrunk by up to this fraction
    sweep_interval: float = 30.0
    dead_letter_days: float = 30.0

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> DeliveryConfig:
        """Read `webhook_*` overrides from `Settings.extra` (tests use sub-second schedules)."""
        values: dict[str, Any] = {}
        if "webhook_retry_schedule" in extra:
            values["schedule"] = tuple(float(delay) for delay in extra["webhook_retry_schedule"])
        for name in ("timeout", "jitter", "sweep_interval", "dead_letter_days"):
            if f"webhook_{name}" in extra:
                values[name] = float(extra[f"webhook_{name}"])
        return cls(**values)

    @property
    def lease(self) -> float:
        """How long an owner may hold a delivery between store updates before others consider it abandoned."""
        return self.timeout + 60.0


def retry_delay(attempt: int, config: DeliveryConfig, rng: random.Random | None = None) -> float | None:
    """Seconds to wait after failed attempt `attempt` (1-based), or None when the schedule is exhausted."""
    if attempt >= len(config.schedule):
        return None
    base = config.schedule[attempt]
    spread = (rng or random).uniform(-config.jitter, config.jitter)
    return max(0.0, base * (1 + spread))


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    body: str | None
    error: str | None
    via: str
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def next_delay(
    attempt: int, result: AttemptResult, config: DeliveryConfig, rng: random.Random | None = None
) -> float | None:
    """When to try again after `result`, or None for no further attempt.

    410 Gone means the receiver retired the endpoint (Standard Webhooks): stop. A `Retry-After` (429, 503) pushes
    the next attempt back, but never beyond the schedule's longest gap, so the schedule stays bounded."""
    if result.ok or result.status_code == 410:
        return None
    delay = retry_delay(attempt, config, rng)
    if delay is not None and result.retry_after is not None:
        delay = max(delay, min(result.retry_after, max(config.schedule)))
    return delay


def parse_retry_after(value: str | None) -> float | None:
    """Only the delay-seconds form; an HTTP date is rare for webhooks and ignored."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


Progress = Callable[[DeliveryRecord, str, int, int | None], Awaitable[None]]
Exhausted = Callable[[DeliveryRecord], Awaitable[None]]
AllowPrivate = Callable[[str], Awaitable[bool]]
SignsModelRiver = Callable[[DeliveryRecord], Awaitable[bool]]


async def _always(_: DeliveryRecord) -> bool:
    return True


class WebhookDispatcher:
    def __init__(
        self,
        store: WebhookStore,
        hub: ForwardHub,
        config: DeliveryConfig,
        *,
        allow_private: AllowPrivate,
        on_progress: Progress,
        on_exhausted: Exhausted,
        modelriver_signature: SignsModelRiver = _always,
        resolver: Resolver = resolve,
    ) -> None:
        self.store = store
        self.hub = hub
        self.config = config
        self.allow_private = allow_private
        self.on_progress = on_progress
        self.on_exhausted = on_exhausted
        self.modelriver_signature = modelriver_signature
        self.resolver = resolver
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._clients: dict[bool, httpx.AsyncClient] = {}  # by whether the project allows private targets
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # The SSRF guard is applied as each connection opens (`sluice.delivery.egress`); redirects are never followed:
        # a 3xx is a failed attempt (Standard Webhooks).
        self._clients = {
            allow_private: webhook_client(
                allow_private=allow_private,
                timeout=self.config.timeout,
                headers={"User-Agent": USER_AGENT},
                resolver=self.resolver,
            )
            for allow_private in (False, True)
        }
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="sluice-webhook-sweep")

    async def aclose(self) -> None:
        tasks = [*self._tasks, *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in self._clients.values():
            await client.aclose()

    def launch(self, delivery_id: str) -> None:
        """Own and run a delivery whose lease this process holds."""
        if delivery_id in self._running:
            # Its task may be finishing an attempt that already ended the delivery (e.g. a replay arriving while the
            # exhausted-hook runs): run it again once that task is done, rather than leaving it to the sweep.
            self._again.add(delivery_id)
            return
        self._running.add(delivery_id)
        task = asyncio.create_task(self._run(delivery_id), name=f"sluice-webhook-{delivery_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sweep(self) -> int:
        """Take over abandoned deliveries and drop the ones past the dead-letter retention; how many were taken."""
        await self.store.purge_finished(now() - timedelta(days=self.config.dead_letter_days))
        claimed = await self.store.claim_stale(lease=self.config.lease)
        for delivery_id in claimed:
            self.launch(delivery_id)
        return len(claimed)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("webhook sweep failed")

    async def _run(self, delivery_id: str) -> None:
        try:
            while True:
                delivery = await self.store.get_delivery(delivery_id)
                if delivery is None or delivery.status != "pending":
                    return
                if delivery.next_attempt_at is not None:
                    wait = (delivery.next_attempt_at - now()).total_seconds()
                    if wait > 0:
                        await asyncio.sleep(wait)
                if not await self._attempt(delivery):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and the sweep takes the delivery up again.
            log.exception("webhook delivery %s crashed", delivery_id)
        finally:
            self._running.discard(delivery_id)
            if delivery_id in self._again:
                self._again.discard(delivery_id)
                self.launch(delivery_id)

    async def _attempt(self, delivery: DeliveryRecord) -> bool:
        """One attempt; True if another one is scheduled."""
        attempt = delivery.attempts + 1
        await self.store.extend_lock(delivery.id, now() + timedelta(seconds=self.config.lease))
        secrets = await self.store.ensure_secret(delivery.project_id, generate_secret())
        body = delivery.body.encode()
        stamp = int(time.time())
        headers = {"content-type": "application/json", **signature_headers(delivery.id, body, secrets, timestamp=stamp)}
        signs_modelriver = await self.modelriver_signature(delivery)
        if signs_modelriver and secrets:  # one value only: the newest secret (the first active one)
            headers.update(modelriver_headers(delivery.id, body, secrets[0], timestamp=stamp))
        await self.on_progress(delivery, "sent", attempt, None)
        started_at, started = now(), time.perf_counter()
        try:
            result = await self._send(delivery, headers, body)
        except Exception as exc:  # still an attempt: recorded and retried like any other failure
            log.exception("webhook %s attempt %d failed inside the gateway", delivery.id, attempt)
            result = AttemptResult(
                status_code=None,
                body=None,
                error=f"the gateway failed: {type(exc).__name__}",
                via="forward" if delivery.url == FORWARD_TARGET else "http",
            )
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        refused = refusal(result.status_code, result.body, modelriver_sent=signs_modelriver)
        if refused is not None:
            result = replace(result, error=refused)
        delay = next_delay(attempt, result, self.config)
        status = "delivered" if result.ok else ("pending" if delay is not None else "failed")
        next_at = now() + timedelta(seconds=delay) if delay is not None else None
        # The channel hears first, so whoever sees the outcome in the store also finds it on the channel.
        await self.on_progress(delivery, "delivered" if result.ok else "failed", attempt, result.status_code)
        await self.store.record_attempt(
            delivery.id,
            attempt=attempt,
            status_code=result.status_code,
            error=result.error,
            latency_ms=latency_ms,
            response_excerpt=result.body,
            via=result.via,
            started_at=started_at,
            status=status,
            next_attempt_at=next_at,
            locked_until=next_at + timedelta(seconds=self.config.lease) if next_at else None,
        )
        log.info("webhook %s attempt %d: %s", delivery.id, attempt, result.status_code or result.error)
        if status == "failed":
            await self.on_exhausted(delivery)
        return status == "pending"

    async def _send(self, delivery: DeliveryRecord, headers: dict[str, str], body: bytes) -> AttemptResult:
        if delivery.url == FORWARD_TARGET:
            return await self._send_forward(delivery, headers, body)
        try:
            parse_webhook_url(delivery.url)
            client = self._clients[await self.allow_private(delivery.project_id)]
            response = await client.post(delivery.url, content=body, headers=headers)
        except UrlRefused as exc:
            return AttemptResult(status_code=None, body=None, error=exc.message, via="http")
        except httpx.TimeoutException:
            return AttemptResult(
                status_code=None, body=None, error=f"timed out after {self.config.timeout:g}s", via="http"
            )
        except httpx.HTTPError as exc:
            return AttemptResult(status_code=None, body=None, error=f"{type(exc).__name__}: {exc}"[:300], via="http")
        return AttemptResult(
            status_code=response.status_code,
            body=response.text[:EXCERPT_CHARS],
            error=None,
            via="http",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    async def _send_forward(self, delivery: DeliveryRecord, headers: dict[str, str], body: bytes) -> AttemptResult:
        message = {"delivery_id": delivery.id, "event_type": delivery.type, "headers": headers, "body": body.decode()}
        try:
            reply = await self.hub.deliver(delivery.project_id, message, wait=self.config.timeout)
        except ForwardUnavailable as exc:
            return AttemptResult(status_code=None, body=None, error=str(exc), via="forward")
        except TimeoutError:
            return AttemptResult(
                status_code=None, body=None, error=f"timed out after {self.config.timeout:g}s", via="forward"
            )
        status = reply.get("status")
        return AttemptResult(
            status_code=status if isinstance(status, int) else None,
            body=str(reply.get("body") or "")[:EXCERPT_CHARS],
            error=reply.get("error"),
            via="forward",
        )
