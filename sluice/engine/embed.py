"""Run an embeddings request through its workflow's provider chain: the same loop as a chat run, without a stream.

Each chain entry is admitted by its circuit breaker, then gets one attempt under the entry's total deadline, plus
retries on the same provider for errors that say a retry may help (`RetryPolicy`); then the loop fails over to the
next entry (a `failover` event), or ends at once for a fail-fast error. A provider whose type has no embeddings (its
adapter has no `embed`, e.g. Anthropic) fails its attempt with `Unsupported`, so the chain moves on. Every attempt is
recorded through the same `AttemptLog` as a chat attempt (tokens in = the provider's count of the inputs).

The vectors are the caller's only: they go in `Outcome.result`, never into the channel or the request log, whose
`data` is a summary (`{"count": n, "dimensions": d}`).

No I/O of its own, like `sluice.engine.run`: the channel, the attempt log, the breaker records and the providers come
in through `sluice.engine.ports`, the clock, sleep and randomness from the `Runner` whose parts it shares.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sluice.engine import breaker
from sluice.engine.attempt import Deadlines
from sluice.engine.ports import AttemptRecord, ChannelWriter
from sluice.engine.run import Runner, deadlines_for, through_chain
from sluice.events import AttemptEvent, StatusEvent
from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.states import COMPLETED, RUNNING
from sluice.providers.base import EmbeddingRequest, Embeddings, Provider, Usage
from sluice.providers.errors import CircuitOpen, ProviderError, ProviderTimeout, StreamBroken, Unsupported
from sluice.spend.prices import genai_prices_version
from sluice.spend.usage import spend_meta, spent
from sluice.workflows.model import ChainEntry, Workflow

log = logging.getLogger("sluice.engine")


@dataclass(frozen=True)
class EmbedInput:
    """An embeddings request as the loop reads it from the accepted body (validated at the API edge)."""

    inputs: tuple[str, ...]
    dimensions: int | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> EmbedInput:
        return cls(inputs=tuple(body["input"]), dimensions=body.get("dimensions"))


@dataclass
class _Run:
    request_id: str
    channel: ChannelWriter
    workflow: Workflow
    started: float
    attempts: list[dict[str, Any]]
    count: int = 0


class EmbedRunner:
    """Embeddings through a chain, with the parts (providers, attempt log, breakers, retry policy, clock) of
    `runner`."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def run(
        self,
        channel: ChannelWriter,
        request_id: str,
        workflow: Workflow,
        embed: EmbedInput,
        attempts: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """Run the chain for the vectors; `attempts`: as `Runner.run`'s."""
        await channel.emit(StatusEvent(status=RUNNING))
        run = _Run(request_id, channel, workflow, time.perf_counter(), [] if attempts is None else attempts)
        return await through_chain(
            channel, workflow, run.attempts, run.started, lambda entry: self._run_entry(run, entry, embed)
        )

    async def _run_entry(self, run: _Run, entry: ChainEntry, embed: EmbedInput) -> Outcome | ProviderError:
        runner, key = self.runner, _label(entry)
        try:
            policy = runner.providers.breaker_policy(entry.provider)
        except ProviderError as gone:  # the provider left the catalog (an admin change mid-run)
            await self._record(run, entry, time.perf_counter(), error=gone)
            return gone
        if not await self._admit(key, policy):
            skipped = CircuitOpen(f"{key} skipped: its circuit breaker is open after repeated failures")
            await self._record(run, entry, time.perf_counter(), error=skipped, status="skipped")
            return skipped
        try:
            provider = runner.providers.get(entry.provider)
        except ProviderError as error:
            await self._record(run, entry, time.perf_counter(), error=error)
            return error
        deadlines = deadlines_for(entry)
        request = EmbeddingRequest(
            model=entry.model, inputs=embed.inputs, dimensions=embed.dimensions, connect_timeout=deadlines.connect
        )
        retries = runner.retry if entry.retries is None else replace(runner.retry, retries=entry.retries)
        retry = 0
        while True:
            await run.channel.emit(AttemptEvent(provider=entry.provider, model=entry.model, attempt=run.count + 1))
            started = time.perf_counter()
            try:
                found = await _attempt(provider, request, deadlines, key)
            except ProviderError as error:
                await self._record(run, entry, started, error=error)
                await self._record_health(key, policy, ok=not error.health)
                retry += 1
                delay = retries.delay(error, retry, runner.rand)
                if delay is None:
                    return error
                await runner.sleep(delay)
                continue
            await self._record_health(key, policy, ok=True)
            await self._record(run, entry, started, found=found)
            meta = {
                "workflow": run.workflow.name,
                "provider": entry.provider,
                "model": entry.model,
                "attempts": run.attempts,
                "duration_ms": _elapsed_ms(run.started),
                **spend_meta(run.attempts, genai_prices_version()),
            }
            dimensions = len(found.vectors[0]) if found.vectors else 0
            data = {"count": len(found.vectors), "dimensions": dimensions}
            return Outcome(status=COMPLETED, data=data, meta=meta, result=found)

    async def _record(
        self,
        run: _Run,
        entry: ChainEntry,
        started: float,
        *,
        found: Embeddings | None = None,
        error: ProviderError | None = None,
        status: str = "failed",
    ) -> None:
        """Log one attempt: succeeded with `found`, or failed (or skipped) with `error` (an embeddings call that
        failed returned nothing to bill)."""
        run.count += 1
        elapsed = time.perf_counter() - started
        at = datetime.fromtimestamp(time.time() - elapsed, UTC)
        usage = Usage(input_tokens=found.usage.input_tokens) if found else Usage()
        priced = self.runner.prices.price(entry.provider, entry.model, usage, at)
        entry_meta: dict[str, Any] = {"provider": entry.provider, "model": entry.model}
        if error is None:
            status = "succeeded"
            entry_meta["status"] = status
        else:
            entry_meta.update(status=status, error_code=error.code, reason=error.message)
        run.attempts.append({**entry_meta, **spent(usage, priced)})
        await self.runner.attempts.record_attempt(
            AttemptRecord.spending(
                usage,
                priced,
                request_id=run.request_id,
                attempt=run.count,
                provider=entry.provider,
                model=entry.model,
                status=status,
                started_at=at,
                duration_ms=elapsed * 1000,
                error_code=error.code if error else None,
                error_message=error.message if error else None,
            )
        )

    async def _admit(self, key: str, policy: breaker.BreakerPolicy) -> bool:
        breakers = self.runner.breakers
        state = breaker.BreakerState.from_record(await breakers.breaker_state(key))
        allowed, updated = breaker.admit(state, self.runner.clock(), policy)
        if updated != state:
            await breakers.set_breaker_state(key, updated.to_record(), ttl=policy.cooldown + policy.probe_timeout)
        return allowed

    async def _record_health(self, key: str, policy: breaker.BreakerPolicy, *, ok: bool) -> None:
        breakers = self.runner.breakers
        state = breaker.BreakerState.from_record(await breakers.breaker_state(key))
        updated = breaker.record(state, ok, self.runner.clock(), policy)
        if updated != state:
            await breakers.set_breaker_state(key, updated.to_record(), ttl=policy.cooldown + policy.probe_timeout)


async def _attempt(provider: Provider, request: EmbeddingRequest, deadlines: Deadlines, label: str) -> Embeddings:
    """One `embed` call under the total deadline, its answer checked: one vector per input, all of one length."""
    embed = getattr(provider, "embed", None)
    if embed is None:
        raise Unsupported(f"{label}: this provider's type has no embeddings API")
    try:
        async with asyncio.timeout(deadlines.total):
            found: Embeddings = await embed(request)
    except ProviderError:
        raise
    except TimeoutError:
        raise ProviderTimeout(f"{label}: no embeddings within {deadlines.total:g}s") from None
    except Exception as exc:
        # An adapter that chokes on an unexpected answer fails this attempt, not the whole request.
        log.exception("%s: the adapter failed on the provider's embeddings answer", label)
        raise StreamBroken(f"{label}: unexpected embeddings answer ({type(exc).__name__})") from exc
    if len(found.vectors) != len(request.inputs):
        raise StreamBroken(f"{label}: {len(found.vectors)} vectors for {len(request.inputs)} inputs")
    if len({len(vector) for vector in found.vectors}) > 1:
        raise StreamBroken(f"{label}: vectors of different lengths")
    if request.dimensions is not None and found.vectors and len(found.vectors[0]) != request.dimensions:
        # It answered, but cannot give this size: another provider may (not a failure of its health).
        raise Unsupported(f"{label}: answered {len(found.vectors[0])} dimensions, not the {request.dimensions} asked")
    return found


def _label(entry: ChainEntry) -> str:
    return f"{entry.provider}/{entry.model}"


def _elapsed_ms(perf_started: float) -> float:
    return round((time.perf_counter() - perf_started) * 1000, 2)
