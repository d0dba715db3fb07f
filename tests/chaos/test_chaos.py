"""The chaos suite: thousands of requests through a real `sluice serve` process while faults are injected around it —
providers answering 429/5xx/400, timing out, cutting, stalling or corrupting streams at random points (answers then
continued elsewhere); webhook endpoints down, slow or failing, backends that never call back or call back twice;
requests cancelled at random moments (just accepted, streaming, awaiting their callback); some sent with a key whose
budget runs out partway; the gateway SIGKILLed and restarted while requests stream and while they wait for
callbacks — and every accepted request is checked against the invariants in `invariants.py`, the budget against its
own (no hold left behind, the budget's spend the same in the ledger as in the store). The counts are printed (run
with `-s` to see them)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from sluice.testing import FakeProvider
from tests.chaos.faults import WEBHOOK_BEHAVIOURS, ProviderFaults, webhook_endpoint
from tests.chaos.invariants import TERMINAL, Observed, violations
from tests.chaos.process import GatewayProcess
from tests.conftest import MASTER_KEY

pytestmark = pytest.mark.chaos

REQUESTS = int(os.environ.get("SLUICE_CHAOS_REQUESTS", "2000"))  # CI runs the full 2,000
CONCURRENCY = 64
KILL_AT = (0.3, 0.65)  # fractions of the requests finished when the gateway is SIGKILLed
CANCEL_RATE = 0.08  # requests cancelled through the API, at a random moment of their life
BUDGET_RATE = 0.2  # requests sent with the budgeted key (`BUDGET_USD`, which runs out partway through the suite)
BUDGET_USD = 0.02
REQUEST_DEADLINE = 90.0  # seconds one request may take, restarts included, before it counts as stuck
UNFINISHED = ("queued", "running", "streaming", "validating", "awaiting_callback")
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}

TIMEOUTS = "{connect: 1, first_token: 0.3, idle: 0.3, total: 5}"
PRICES = "{'*': {input: 1, output: 10}}"  # USD per million tokens, so that the budgeted key's requests cost
CONFIG = """
providers:
  primary: {{type: openai, api_key: k, base_url: "{primary}", breaker: {{failures: 1000000}}, prices: {prices}}}
  backup: {{type: anthropic, api_key: k, base_url: "{backup}", breaker: {{failures: 1000000}}, prices: {prices}}}
workflows:
  chaos:
    chain: &chain
      - {{provider: primary, model: a, retries: 1, timeouts: {timeouts}}}
      - {{provider: backup, model: b, retries: 1, timeouts: {timeouts}}}
  chaos_deliver:
    chain: *chain
    callback: {{timeout: 1s, on_timeout: deliver}}
  chaos_fail:
    chain: *chain
    callback: {{timeout: 1s, on_timeout: fail}}
"""


class Chaos:
    def __init__(self, gateway: GatewayProcess, hooks: Any, rng: random.Random) -> None:
        self.gw = gateway
        self.hooks = hooks
        self.rng = rng
        # Several small pools: one large httpx pool spends more CPU scanning its connections than sending requests.
        self.clients = [
            httpx.AsyncClient(base_url=gateway.url, timeout=30, limits=httpx.Limits(max_connections=16))
            for _ in range(CONCURRENCY // 8)
        ]
        self.client = self.clients[0]
        self.observed: list[Observed] = []
        self.injected: Counter[str] = Counter()
        self.finished = 0
        self.budgeted: dict[str, str] | None = None  # the headers of the key with a budget (`BUDGET_USD`)
        self.over_budget = 0  # its requests refused with 402
        self.kills: list[dict[str, int]] = []

    async def retrying(self, call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """Call until the gateway answers (it may be down: killed and restarting)."""
        async with asyncio.timeout(REQUEST_DEADLINE):
            while True:
                await self.gw.generation.wait()
                try:
                    response = await call()
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code < 500:
                    return response
                await asyncio.sleep(0.05)

    def draw_cancel(self, body: dict[str, Any]) -> str | None:
        """When (if at all) this request is cancelled: right after it is accepted (often before its run starts),
        once it streams, or while it awaits its callback."""
        if self.rng.random() >= CANCEL_RATE:
            return None
        moments = ["accepted", "streaming", *(["awaiting_callback"] if "events" in body else [])]
        return self.rng.choice(moments)

    async def cancel_when(self, client: httpx.AsyncClient, moment: str, channel_id: str, seen: Observed) -> None:
        """Cancel the request at `moment` (it may have ended before: a finished request is answered as it is)."""
        async with asyncio.timeout(REQUEST_DEADLINE):
            while moment != "accepted" and not any(_reached(e, moment) for e in seen.events):
                if seen.events and seen.events[-1]["type"] in TERMINAL:
                    return  # it ended first
                await asyncio.sleep(0.01)
            answer = await self.retrying(lambda: client.post(f"/v1/requests/{channel_id}/cancel", headers=ADMIN))
        assert answer.status_code == 200, answer.text
        self.injected[f"cancel:{moment}"] += 1

    def draw_request(self, index: int) -> dict[str, Any]:
        body: dict[str, Any] = {"workflow": "chaos", "messages": [{"role": "user", "content": f"request {index}"}]}
        roll = self.rng.random()
        if roll < 0.4:
            return body
        behaviour = self.rng.choice(WEBHOOK_BEHAVIOURS)
        self.injected[f"webhook:{behaviour}"] += behaviour not in ("callback",)
        body.update(webhook_url=self.hooks.url_for(behaviour), metadata={"chaos": behaviour})
        if roll < 0.55:
            return body  # a lifecycle webhook after the terminal event
        body.update(workflow=self.rng.choice(("chaos_deliver", "chaos_fail")), events=["webhook_received"])
        return body

    async def one(self, index: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            client = self.clients[index % len(self.clients)]
            body = self.draw_request(index)
            key = ADMIN
            if self.budgeted is not None and self.rng.random() < BUDGET_RATE:
                key = self.budgeted
                body["max_tokens"] = 50  # a small worst case: many fit in the budget before it runs out
            restarts = self.gw.restarts
            seen = Observed(request_id=f"#{index}")
            try:
                accepted = await self.retrying(
                    lambda: client.post("/v1/ai/async", json=body, headers={**key, "Idempotency-Key": f"chaos-{index}"})
                )
                if accepted.status_code == 402 and key is self.budgeted:  # refused before anything was recorded
                    self.over_budget += 1
                    self.finished += 1
                    return
                assert accepted.status_code == 202, accepted.text
                data = accepted.json()
                seen.request_id = data["channel_id"]
                moment = self.draw_cancel(body)
                canceller = (
                    asyncio.create_task(self.cancel_when(client, moment, data["channel_id"], seen)) if moment else None
                )
                async with asyncio.timeout(REQUEST_DEADLINE):
                    if self.rng.random() < 0.7:
                        await self.follow_ws(data, seen)
                    else:
                        await self.follow_sse(client, data, seen)
                if canceller is not None:
                    await canceller
                seen.status = await self.final_status(client, data["channel_id"])
            except Exception as exc:  # recorded as a violation, with what happened
                seen.error = f"{type(exc).__name__}: {exc}"[:300]
            seen.restarts_seen = self.gw.restarts - restarts
            self.observed.append(seen)
            self.finished += 1

    async def final_status(self, client: httpx.AsyncClient, channel_id: str) -> str:
        """The store's status once it is final. The terminal event goes out just before the store records the end
        (so a crash in between leaves the request to be run again, never a log without its end): allow a moment."""
        async with asyncio.timeout(10):
            while True:
                record = await self.retrying(lambda: client.get(f"/v1/requests/{channel_id}", headers=ADMIN))
                status = record.json()["status"]
                if status not in UNFINISHED:
                    return status
                await asyncio.sleep(0.05)

    async def follow_ws(self, accepted: dict[str, Any], seen: Observed) -> None:
        while True:
            await self.gw.generation.wait()
            after = seen.events[-1]["seq"] if seen.events else 0
            try:
                async with websockets.connect(f"{accepted['websocket_url']}&after={after}", max_size=None) as ws:
                    async for frame in ws:
                        event = orjson.loads(frame)
                        if "seq" in event:
                            seen.events.append(event)
                    if ws.close_code not in (1000, None) and ws.close_code >= 4000:
                        raise AssertionError(f"closed {ws.close_code}: {ws.close_reason}")
            except (OSError, ConnectionClosed, InvalidHandshake):
                pass  # the gateway went away: resume from the last seq once it is back
            if seen.events and seen.events[-1]["type"] in TERMINAL:
                return
            await asyncio.sleep(0.05)

    async def follow_sse(self, client: httpx.AsyncClient, accepted: dict[str, Any], seen: Observed) -> None:
        url = f"/v1/channels/{accepted['channel_id']}/events"
        while True:
            await self.gw.generation.wait()
            headers = {"Last-Event-ID": str(seen.events[-1]["seq"])} if seen.events else {}
            try:
                async with client.stream(
                    "GET", url, params={"token": accepted["ws_token"]}, headers=headers
                ) as response:
                    assert response.status_code == 200, response.status_code
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            seen.events.append(orjson.loads(line[6:]))
            except httpx.TransportError:
                pass
            if seen.events and seen.events[-1]["type"] in TERMINAL:
                return
            await asyncio.sleep(0.05)

    async def killer(self, total: int) -> None:
        """SIGKILL the gateway when the given fractions of requests have finished, noting what was in flight."""
        for fraction in KILL_AT:
            while self.finished < fraction * total:
                await asyncio.sleep(0.02)
            in_flight = {}
            for status in ("running", "awaiting_callback"):
                found = await self.client.get("/v1/admin/requests", params={"status": status}, headers=ADMIN)
                in_flight[status] = len(found.json()["requests"])
            self.kills.append(in_flight)
            await self.gw.kill_and_restart()

    async def run(self, total: int) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)
        killer = asyncio.create_task(self.killer(total))
        await asyncio.gather(*(self.one(index, gate) for index in range(total)))
        await killer


@pytest.mark.timeout(240)
async def test_chaos_every_accepted_request_ends_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    started = time.monotonic()
    # Both providers know the same answer, so a continuation (a cut, stall or in-stream error after text: the next
    # attempt goes on from there, by instruction on OpenAI, by prefill on Anthropic) completes that answer.
    answer = "Chaos answer: streamed in pieces, cut anywhere, continued elsewhere, and still whole at the end."
    async with (
        FakeProvider("openai", text=answer) as primary,
        FakeProvider("anthropic", text=answer) as backup,
        webhook_endpoint() as hooks,
    ):
        primary_faults = ProviderFaults.draw(primary, rng, 12_000, rate=0.5)
        backup_faults = ProviderFaults.draw(backup, rng, 12_000, rate=0.2)
        config = tmp_path / "sluice.yaml"
        config.write_text(
            CONFIG.format(primary=primary.base_url, backup=backup.base_url, timeouts=TIMEOUTS, prices=PRICES)
        )
        gateway = GatewayProcess(
            config=config,
            data_dir=tmp_path / "data",
            log_path=tmp_path / "gateway.log",
            env={
                "SLUICE_WEBHOOK_RETRY_SCHEDULE": "0,0.05,0.1",
                "SLUICE_WEBHOOK_TIMEOUT": "0.5",
                "SLUICE_WEBHOOK_JITTER": "0",
                "SLUICE_HEARTBEAT_INTERVAL": "0.5",
            },
        )
        await gateway.start()
        chaos = Chaos(gateway, hooks, rng)
        try:
            created = await chaos.client.post(
                "/v1/admin/keys", json={"name": "chaos-budget", "budget_usd": BUDGET_USD}, headers=ADMIN
            )
            chaos.budgeted = {"Authorization": f"Bearer {created.json()['key']}"}
            await chaos.run(REQUESTS)
            leftover = {}
            for status in UNFINISHED:
                found = await chaos.client.get("/v1/admin/requests", params={"status": status}, headers=ADMIN)
                leftover[status] = len(found.json()["requests"])
            budget = await budget_state(chaos.client, created.json()["id"])
        finally:
            for client in chaos.clients:
                await client.aclose()
            await gateway.stop()
        injected = chaos.injected + primary_faults.injected() + backup_faults.injected()
        injected["process:sigkill"] = gateway.restarts

    problems = [problem for seen in chaos.observed for problem in violations(seen)]
    problems += [f"{count} requests left {status}" for status, count in leftover.items() if count]
    problems += [f"a reused callback token got {code}" for code in hooks.second_callbacks if code not in (409, 410)]
    terminals = Counter(e["type"] for seen in chaos.observed for e in seen.events if e["type"] in TERMINAL)
    resets_after_restart = sum(
        1 for seen in chaos.observed for e in seen.events if e["type"] == "reset" and "restarted" in e.get("reason", "")
    )
    splices = Counter(e["method"] for seen in chaos.observed for e in seen.events if e["type"] == "splice")
    continued = sum(
        1 for seen in chaos.observed for e in seen.events if e["type"] == "response" and e["meta"].get("continued")
    )
    print(
        f"\nchaos: {len(chaos.observed)} requests in {time.monotonic() - started:.1f}s; "
        f"faults injected {sum(injected.values())}: {dict(sorted(injected.items()))}"
    )
    print(
        f"chaos: terminal events {dict(terminals)}; in flight at each SIGKILL {chaos.kills}; "
        f"streams reset by a restart {resets_after_restart}; reused callback tokens {len(hooks.second_callbacks)}"
    )
    print(f"chaos: splices {dict(splices)}; answers continued across a failure {continued}")
    print(f"chaos: budget {budget}; requests refused over it {chaos.over_budget}")
    print(f"chaos: violations {len(problems)}")
    assert not problems, "\n".join(problems[:40])
    assert len(chaos.observed) + chaos.over_budget == REQUESTS and sum(terminals.values()) == len(chaos.observed)
    # The budget: it ran out (requests were refused), no hold outlived its request, and the spend it counted is the
    # store's, request by request, SIGKILLs included.
    assert chaos.over_budget > 0 and budget["accepted"] > 0, budget
    assert budget["held_usd"] == 0, budget
    assert budget["spent_usd"] == pytest.approx(budget["store_usd"], abs=1e-9), budget
    assert sum(k["running"] for k in chaos.kills) >= 1, "no request was mid-run at a SIGKILL"
    assert sum(k["awaiting_callback"] for k in chaos.kills) >= 1, "no request was waiting for a callback at a SIGKILL"
    for kind in ("provider:429", "provider:cut", "provider:stall", "webhook:down", "webhook:slow", "webhook:500"):
        assert injected[kind] > 0, kind
    assert splices["prefill"] > 0 and splices["instruction"] > 0 and continued > 0, (splices, continued)
    for kind in ("cancel:accepted", "cancel:streaming", "cancel:awaiting_callback"):
        assert injected[kind] > 0, kind
    cancelled = sum(1 for seen in chaos.observed if seen.status == "cancelled")
    assert cancelled > 0, "no cancel ended a request"


async def budget_state(client: httpx.AsyncClient, key_id: str) -> dict[str, Any]:
    """The budgeted key's spend as its ledger holds it (the key listing) and as the store has it (the spend page)."""
    keys = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["keys"]
    spend = next(key["spend"] for key in keys if key["id"] == key_id)
    by_key = (await client.get("/v1/admin/spend", params={"days": 1}, headers=ADMIN)).json()["by_key"]
    stored = next((row for row in by_key if row["key"] == key_id), {"cost_usd": 0.0, "requests": 0})
    return {
        "spent_usd": spend["spent_usd"],
        "held_usd": spend["held_usd"],
        "store_usd": stored["cost_usd"],
        "accepted": stored["requests"],
    }


def _reached(event: dict[str, Any], moment: str) -> bool:
    if moment == "streaming":
        return event["type"] == "delta"
    return event["type"] == "status" and event.get("status") == moment
