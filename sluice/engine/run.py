"""Run one request through its workflow's provider chain, streaming everything into the channel.

The chain is a plain loop. Each entry gets one attempt, plus retries on the same provider for errors that say a
retry may help (with backoff, or the provider's Retry-After), plus one re-ask after a schema violation; then the
loop fails over to the next entry, or ends at once for a fail-fast error (see `sluice.providers.errors`). A provider
whose circuit breaker is open is skipped. Output that streamed before a failure is retracted with `reset`, so the
final answer always comes from a single attempt.

No I/O of its own: the channel, the attempt log, the breaker records and the providers come in through the small
protocols of `sluice.engine.ports`, and the clock, sleep and randomness are injected.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sluice.engine import breaker
from sluice.engine.attempt import Deadlines, Progress, stream_attempt
from sluice.engine.chat import ChatInput
from sluice.engine.ports import AttemptLog, AttemptRecord, BreakerStates, ChannelWriter, Providers
from sluice.engine.retry import RetryPolicy
from sluice.events import AttemptEvent, FailoverEvent, ResetEvent, StatusEvent
from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.ports import RequestEnded
from sluice.lifecycle.states import COMPLETED, RUNNING
from sluice.providers.base import ProviderRequest, Usage
from sluice.providers.errors import CircuitOpen, ProviderError, Unsupported
from sluice.structured import SchemaViolation, finalize, reask
from sluice.structured.native import prepare
from sluice.workflows.model import ChainEntry, Workflow

DEFAULT_DEADLINES = Deadlines()


class _Cancelled(ProviderError):
    """How an attempt the request's cancel cut short is logged (status `cancelled`)."""

    code = "cancelled"


_CANCELLED = _Cancelled("the request was cancelled while this attempt ran")


@dataclass
class _Run:
    request_id: str
    channel: ChannelWriter
    workflow: Workflow
    started: float
    streamed: bool = True
    attempts: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0


def build_request(
    entry: ChainEntry,
    workflow: Workflow,
    chat: ChatInput,
    dialect: str = "simulated",
    connect_timeout: float | None = None,
    streamed: bool = True,
) -> tuple[ProviderRequest, str | None]:
    """The provider request for one chain entry, asking for the workflow's schema in the provider's structured-output
    `dialect` (native mode or a prompt), and that mode (None without a schema). `streamed=False`: see `Runner.run`."""
    request = ProviderRequest(
        model=entry.model,
        messages=chat.messages,
        system=chat.system or workflow.system,
        schema=workflow.schema,
        params={**entry.params, **chat.params},
        tools=chat.tools,
        tool_choice=chat.tool_choice,
        parallel_tool_calls=chat.parallel_tool_calls,
        response_format=chat.response_format,
        passthrough=chat.passthrough,
        connect_timeout=connect_timeout,
        stream=streamed,
        native=chat.native,
    )
    mode, request = prepare(request, dialect)
    return request, mode


def deadlines_for(entry: ChainEntry, default: Deadlines = DEFAULT_DEADLINES) -> Deadlines:
    t = entry.timeouts
    total = t.total or entry.timeout or default.total
    return Deadlines(
        connect=t.connect or default.connect,
        first_token=t.first_token or default.first_token,
        idle=t.idle or default.idle,
        total=total,
    )


class Runner:
    def __init__(
        self,
        providers: Providers,
        attempts: AttemptLog,
        breakers: BreakerStates,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.providers = providers
        self.attempts = attempts
        self.breakers = breakers
        self.retry = retry or RetryPolicy()
        self.clock = clock  # wall clock: breaker records are shared between instances
        self.sleep = sleep
        self.rand = rand

    async def run(
        self, channel: ChannelWriter, request_id: str, workflow: Workflow, chat: ChatInput, *, streamed: bool = True
    ) -> Outcome:
        """Run the chain. `streamed=False`: nobody reads the answer before it is whole (a non-streamed
        `/v1/chat/completions`), so a provider may answer in one piece; the channel then gets one delta."""
        await channel.emit(StatusEvent(status=RUNNING))
        if chat.schema is not None:  # a per-request override, compiled when the request was accepted
            workflow = replace(workflow, schema=chat.schema)
        run = _Run(
            request_id=request_id, channel=channel, workflow=workflow, started=time.perf_counter(), streamed=streamed
        )
        return await through_chain(
            channel, workflow, run.attempts, run.started, lambda entry: self._run_entry(run, entry, chat)
        )

    async def _run_entry(self, run: _Run, entry: ChainEntry, chat: ChatInput) -> Outcome | ProviderError:
        """Attempts on one chain entry until one succeeds or the error says to move on."""
        key = _label(entry)
        try:
            policy = self.providers.breaker_policy(entry.provider)
        except ProviderError as gone:  # the provider left the catalog (an admin change mid-run)
            return await self._refused(run, entry, gone)
        if not await self._admit(key, policy):
            skipped = CircuitOpen(f"{key} skipped: its circuit breaker is open after repeated failures")
            return await self._refused(run, entry, skipped, status="skipped")
        try:
            provider = self.providers.get(entry.provider)
            deadlines = deadlines_for(entry)
            if not run.streamed:  # the first text may be the whole answer: only the total deadline applies
                deadlines = replace(deadlines, first_token=deadlines.total)
            request, mode = build_request(
                entry, run.workflow, chat, self.providers.dialect(entry.provider), deadlines.connect, run.streamed
            )
            untranslated = (request.native or {}).get("untranslated")
            if untranslated and not getattr(provider, "reads_native", False):
                raise Unsupported(
                    f"{key}: only a provider that takes the Messages body as it is (Anthropic) can serve "
                    f"{', '.join(map(str, untranslated[:3]))}"
                )
        except ProviderError as error:
            return await self._refused(run, entry, error)
        retries = self.retry if entry.retries is None else replace(self.retry, retries=entry.retries)
        retry, reasked = 0, False
        while True:
            run.count += 1
            await run.channel.emit(AttemptEvent(provider=entry.provider, model=entry.model, attempt=run.count))
            started, progress = time.perf_counter(), Progress()
            try:
                await stream_attempt(run.channel, provider, request, deadlines, key, run.workflow.schema, progress)
                data = answer_of(progress, run.workflow.schema)
            except (asyncio.CancelledError, RequestEnded):
                # Cancelled (`sluice.runs`): the provider's response is closed on the way out; the attempt is logged.
                await self._record_failure(run, entry, _CANCELLED, progress, started, status="cancelled")
                raise
            except ProviderError as error:
                await self._record_failure(run, entry, error, progress, started)
                await self._record_health(key, policy, ok=not error.health)
                if progress.streamed:
                    await run.channel.emit(ResetEvent(reason=f"attempt {run.count} failed: {error.message}"))
                if isinstance(error, SchemaViolation) and not reasked:
                    reasked = True
                    request = reask(request, progress.text, error)
                    continue
                retry += 1
                delay = retries.delay(error, retry, self.rand)
                if delay is None:
                    return error
                await self.sleep(delay)
                continue
            await self._record_health(key, policy, ok=True)
            return await self._succeeded(run, entry, progress, started, data, mode)

    async def _refused(
        self, run: _Run, entry: ChainEntry, error: ProviderError, status: str = "failed"
    ) -> ProviderError:
        """An attempt that never reached the provider: logged like any attempt, then the loop moves on."""
        run.count += 1
        await self._record_failure(run, entry, error, Progress(), time.perf_counter(), status=status)
        return error

    async def _succeeded(
        self, run: _Run, entry: ChainEntry, progress: Progress, started: float, data: Any, mode: str | None
    ) -> Outcome:
        usage = progress.usage or Usage()
        await self.attempts.record_attempt(
            AttemptRecord(
                request_id=run.request_id,
                attempt=run.count,
                provider=entry.provider,
                model=entry.model,
                status="succeeded",
                ttft_ms=progress.ttft_ms,
                duration_ms=_elapsed_ms(started, rounded=False),
                tokens_in=usage.input_tokens,
                tokens_out=usage.output_tokens,
                started_at=_wall(started),
            )
        )
        run.attempts.append({"provider": entry.provider, "model": entry.model, "status": "succeeded"})
        meta = {
            "workflow": run.workflow.name,
            "provider": entry.provider,
            "model": entry.model,
            "attempts": run.attempts,
            "ttft_ms": _round(progress.ttft_ms),
            "duration_ms": _elapsed_ms(run.started),
            "usage": usage_meta(usage),
            "structured_output": run.workflow.schema is not None,
            "structured_mode": mode,
            "finish_reason": progress.finish_reason or ("tool_calls" if progress.calls else "stop"),
        }
        if progress.stop_sequence is not None:
            meta["stop_sequence"] = progress.stop_sequence
        return Outcome(status=COMPLETED, data=data, meta=meta, first_token_at=progress.first_token_at)

    async def _record_failure(
        self,
        run: _Run,
        entry: ChainEntry,
        error: ProviderError,
        progress: Progress,
        started: float,
        status: str = "failed",
    ) -> None:
        usage = progress.usage
        run.attempts.append(
            {
                "provider": entry.provider,
                "model": entry.model,
                "status": status,
                "error_code": error.code,
                "reason": error.message,
            }
        )
        await self.attempts.record_attempt(
            AttemptRecord(
                request_id=run.request_id,
                attempt=run.count,
                provider=entry.provider,
                model=entry.model,
                status=status,
                error_code=error.code,
                error_message=error.message,
                ttft_ms=progress.ttft_ms,
                duration_ms=_elapsed_ms(started, rounded=False),
                started_at=_wall(started),
                tokens_in=usage.input_tokens if usage else None,
                tokens_out=usage.output_tokens if usage else None,
            )
        )

    async def _admit(self, key: str, policy: breaker.BreakerPolicy) -> bool:
        state = breaker.BreakerState.from_record(await self.breakers.breaker_state(key))
        allowed, updated = breaker.admit(state, self.clock(), policy)
        if updated != state:
            await self.breakers.set_breaker_state(key, updated.to_record(), ttl=policy.cooldown + policy.probe_timeout)
        return allowed

    async def _record_health(self, key: str, policy: breaker.BreakerPolicy, *, ok: bool) -> None:
        state = breaker.BreakerState.from_record(await self.breakers.breaker_state(key))
        updated = breaker.record(state, ok, self.clock(), policy)
        if updated != state:
            await self.breakers.set_breaker_state(key, updated.to_record(), ttl=policy.cooldown + policy.probe_timeout)


def answer_of(progress: Progress, schema: dict[str, Any] | None) -> Any:
    """The run's result: the validated object for a schema, else the assistant message (`content`, and `tool_calls`
    in Chat Completions' shape when the model called tools: a call is a step of the conversation, not its answer,
    so it is not held to the schema), with its `thinking` blocks when the model reasoned (their signatures are
    what an Anthropic client sends back on its next turn)."""
    calls = progress.tool_calls() if progress.calls else None
    if calls:
        message: dict[str, Any] = {"content": progress.text, "tool_calls": [call.to_openai() for call in calls]}
    elif schema is not None:
        return finalize(schema, progress.text)
    else:
        message = {"content": progress.text}
    if progress.thoughts:
        message["thinking"] = progress.thinking()
    return message


async def through_chain(
    channel: ChannelWriter,
    workflow: Workflow,
    attempts: list[dict[str, Any]],
    started: float,
    run_entry: Callable[[ChainEntry], Awaitable[Outcome | ProviderError]],
) -> Outcome:
    """Each chain entry in turn until one succeeds (chat and embeddings alike): a `failover` event between entries;
    the end at a fail-fast error or after the last entry, naming the last error."""
    last_error: ProviderError | None = None
    for index, entry in enumerate(workflow.chain):
        result = await run_entry(entry)
        if isinstance(result, Outcome):
            return result
        last_error = result
        following = workflow.chain[index + 1] if index + 1 < len(workflow.chain) else None
        if result.fail_fast or following is None:
            break
        await channel.emit(FailoverEvent(from_=_label(entry), to=_label(following), error=result.message))
    error = last_error or ProviderError("the workflow has no provider to run")
    tried = {(a["provider"], a["model"]) for a in attempts}
    message = f"every provider failed; last error: {error.message}" if len(tried) > 1 else error.message
    meta = {"workflow": workflow.name, "attempts": attempts, "duration_ms": _elapsed_ms(started)}
    return Outcome.failed(error.code, message, meta)


def _label(entry: ChainEntry) -> str:
    return f"{entry.provider}/{entry.model}"


def _wall(perf_started: float) -> datetime:
    """The wall-clock time a `perf_counter` reading was taken."""
    return datetime.fromtimestamp(time.time() - (time.perf_counter() - perf_started), UTC)


def _elapsed_ms(perf_started: float, *, rounded: bool = True) -> float:
    elapsed = (time.perf_counter() - perf_started) * 1000
    return round(elapsed, 2) if rounded else elapsed


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def usage_meta(usage: Usage) -> dict[str, int]:
    """The terminal event's `meta.usage`: the counts, and the cache and reasoning shares where the provider gave
    them (only then, so an ordinary answer's event stays as small as before)."""
    meta = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cached_input_tokens:
        meta["cached_input_tokens"] = usage.cached_input_tokens
    if usage.reasoning_tokens:
        meta["reasoning_tokens"] = usage.reasoning_tokens
    return meta
