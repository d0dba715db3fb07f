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
from sluice.engine.continuation import INSTRUCTION, OFF, PREFILL, Delivered, continued
from sluice.engine.ports import AttemptLog, AttemptRecord, BreakerStates, ChannelWriter, Pricing, Providers
from sluice.engine.retry import RetryPolicy
from sluice.engine.seam import Seam
from sluice.events import AttemptEvent, FailoverEvent, ResetEvent, SpliceEvent, StatusEvent
from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.ports import RequestEnded
from sluice.lifecycle.states import COMPLETED, RUNNING
from sluice.providers.base import ProviderRequest, Usage
from sluice.providers.errors import CircuitOpen, PrefillRefused, ProviderError, Unsupported
from sluice.spend.prices import NoPrices, genai_prices_version
from sluice.spend.usage import estimated, spend_meta, spent
from sluice.structured import SchemaViolation, finalize, reask
from sluice.structured.native import PROMPT, prepare
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
    delivered: Delivered = field(default_factory=Delivered)  # the answer so far, which the next attempt continues


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
        prices: Pricing | None = None,
    ) -> None:
        self.providers = providers
        self.attempts = attempts
        self.breakers = breakers
        self.prices: Pricing = prices or NoPrices()
        self.retry = retry or RetryPolicy()
        self.clock = clock  # wall clock: breaker records are shared between instances
        self.sleep = sleep
        self.rand = rand

    async def run(
        self,
        channel: ChannelWriter,
        request_id: str,
        workflow: Workflow,
        chat: ChatInput,
        *,
        streamed: bool = True,
        attempts: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """Run the chain. `streamed=False`: nobody reads the answer before it is whole (a non-streamed
        `/v1/chat/completions`), so a provider may answer in one piece; the channel then gets one delta.
        `attempts`: the list the attempts' entries of the outcome's meta go to as they end (with their usage and
        cost), so a caller whose run is stopped midway (a cancel) still knows what it spent."""
        await channel.emit(StatusEvent(status=RUNNING))
        if chat.schema is not None:  # a per-request override, compiled when the request was accepted
            workflow = replace(workflow, schema=chat.schema)
        run = _Run(
            request_id=request_id,
            channel=channel,
            workflow=workflow,
            started=time.perf_counter(),
            streamed=streamed,
            attempts=[] if attempts is None else attempts,
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
            method = OFF if run.workflow.continuation == OFF else self.providers.continuation(entry.provider)
            if method == PREFILL and entry.model in getattr(provider, "without_prefill", ()):
                method = INSTRUCTION  # the model refused a prefill before (`PrefillRefused`)
        except ProviderError as error:
            return await self._refused(run, entry, error)
        retries = self.retry if entry.retries is None else replace(self.retry, retries=entry.retries)
        retry, reasked = 0, False
        while True:
            if run.delivered.text and method == OFF:
                await self._reset(run, f"{key} does not continue an answer (continuation: off): it starts over")
            run.count += 1
            await run.channel.emit(AttemptEvent(provider=entry.provider, model=entry.model, attempt=run.count))
            sent, seam = request, None
            if run.delivered.text:  # this attempt continues the answer from where the last one stopped
                sent, seam = _continuing(request, mode, run.delivered.text, method), Seam(run.delivered.text, method)
                await run.channel.emit(
                    SpliceEvent(
                        from_attempt=run.delivered.attempt,
                        to_attempt=run.count,
                        at_chars=len(run.delivered.text),
                        method=method,
                    )
                )
            started, progress = time.perf_counter(), Progress(carried=run.delivered.text)
            try:
                await stream_attempt(run.channel, provider, sent, deadlines, key, run.workflow.schema, progress, seam)
                data = answer_of(progress, run.workflow.schema)
            except (asyncio.CancelledError, RequestEnded):
                # Cancelled (`sluice.runs`): the provider's response is closed on the way out; the attempt is logged.
                await self._record_failure(run, entry, _CANCELLED, progress, started, sent, status="cancelled")
                raise
            except PrefillRefused as refused:  # this model continues by instruction only: asked so at once
                await self._record_failure(run, entry, refused, progress, started, sent)
                if method != PREFILL:  # an adapter that refused something else: an error like any other
                    return refused
                method = INSTRUCTION
                continue
            except ProviderError as error:
                await self._record_failure(run, entry, error, progress, started, sent)
                await self._record_health(key, policy, ok=not error.health)
                await self._after_failure(run, progress, error)
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
            return await self._succeeded(run, entry, progress, started, data, PROMPT if seam and mode else mode, sent)

    async def _after_failure(self, run: _Run, progress: Progress, error: ProviderError) -> None:
        """What a failed attempt leaves for the next one: the answer so far, which it continues; or, where the
        answer cannot be continued (`sluice.engine.continuation`), a `reset` that takes it back. A complete answer
        that failed its schema is always taken back: the re-ask that follows starts over."""
        if isinstance(error, SchemaViolation):
            if progress.streamed or run.delivered.text:
                await self._reset(run, f"attempt {run.count} failed: {error.message}")
        elif progress.streamed:
            if progress.continuable and run.workflow.continuation != OFF:
                first_token_at = run.delivered.first_token_at or progress.first_token_at
                run.delivered = Delivered(text=progress.text, attempt=run.count, first_token_at=first_token_at)
            else:
                await self._reset(run, f"attempt {run.count} failed: {error.message}")

    async def _reset(self, run: _Run, reason: str) -> None:
        """Take back everything the answer streamed so far (clients drop it; the next attempt starts over)."""
        await run.channel.emit(ResetEvent(reason=reason))
        run.delivered = Delivered()

    async def _refused(
        self, run: _Run, entry: ChainEntry, error: ProviderError, status: str = "failed"
    ) -> ProviderError:
        """An attempt that never reached the provider: logged like any attempt, then the loop moves on."""
        run.count += 1
        await self._record_failure(run, entry, error, Progress(), time.perf_counter(), status=status)
        return error

    async def _succeeded(
        self,
        run: _Run,
        entry: ChainEntry,
        progress: Progress,
        started: float,
        data: Any,
        mode: str | None,
        request: ProviderRequest,
    ) -> Outcome:
        usage = progress.usage or estimated(request, _output_text(progress))
        at = _wall(started)
        priced = self.prices.price(entry.provider, entry.model, usage, at)
        await self.attempts.record_attempt(
            AttemptRecord.spending(
                usage,
                priced,
                request_id=run.request_id,
                attempt=run.count,
                provider=entry.provider,
                model=entry.model,
                status="succeeded",
                ttft_ms=progress.ttft_ms,
                duration_ms=_elapsed_ms(started, rounded=False),
                started_at=at,
            )
        )
        run.attempts.append(
            {"provider": entry.provider, "model": entry.model, "status": "succeeded", **spent(usage, priced)}
        )
        delivered, run.delivered = run.delivered, Delivered()
        meta = {
            "workflow": run.workflow.name,
            "provider": entry.provider,
            "model": entry.model,
            "attempts": run.attempts,
            "ttft_ms": _round(progress.ttft_ms),
            "duration_ms": _elapsed_ms(run.started),
            **spend_meta(run.attempts, genai_prices_version()),
            "structured_output": run.workflow.schema is not None,
            "structured_mode": mode,
            "finish_reason": progress.finish_reason or ("tool_calls" if progress.calls else "stop"),
        }
        if progress.stop_sequence is not None:
            meta["stop_sequence"] = progress.stop_sequence
        if progress.carried:  # spliced from several attempts (`sluice.engine.continuation`)
            meta["continued"] = True
        first_token_at = delivered.first_token_at or progress.first_token_at
        return Outcome(status=COMPLETED, data=data, meta=meta, first_token_at=first_token_at)

    async def _record_failure(
        self,
        run: _Run,
        entry: ChainEntry,
        error: ProviderError,
        progress: Progress,
        started: float,
        request: ProviderRequest | None = None,
        status: str = "failed",
    ) -> None:
        # A provider bills what it read and wrote: an attempt that streamed but was cut before the usage chunk is
        # counted from its text; one refused before any output (an HTTP error, never sent) used nothing.
        usage = progress.usage
        if usage is None:
            usage = estimated(request, _output_text(progress)) if request and progress.streamed else Usage()
        at = _wall(started)
        priced = self.prices.price(entry.provider, entry.model, usage, at)
        run.attempts.append(
            {
                "provider": entry.provider,
                "model": entry.model,
                "status": status,
                "error_code": error.code,
                "reason": error.message,
                **spent(usage, priced),
            }
        )
        await self.attempts.record_attempt(
            AttemptRecord.spending(
                usage,
                priced,
                request_id=run.request_id,
                attempt=run.count,
                provider=entry.provider,
                model=entry.model,
                status=status,
                error_code=error.code,
                error_message=error.message,
                ttft_ms=progress.ttft_ms,
                duration_ms=_elapsed_ms(started, rounded=False),
                started_at=at,
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


def _continuing(request: ProviderRequest, mode: str | None, text: str, method: str) -> ProviderRequest:
    """`request` continuing the answer `text`. A schema is asked for by prompt on a continuation: a provider's native
    mode would make the model write a whole new object, not the rest of this one."""
    if request.schema is not None and mode != PROMPT:
        _, request = prepare(replace(request, extra={}), PROMPT)
    return continued(request, text, method)


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
    meta = {
        "workflow": workflow.name,
        "attempts": attempts,
        "duration_ms": _elapsed_ms(started),
        **spend_meta(attempts, genai_prices_version()),
    }
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


def _output_text(progress: Progress) -> str:
    """Everything an attempt generated, as text: its share of the answer (not the text it continued), its calls'
    arguments, its reasoning."""
    parts = list(progress.parts)
    parts += [name for call in progress.calls.values() for name in (call.name, *call.arguments)]
    parts += [part for thought in progress.thoughts.values() for part in thought.parts]
    return "".join(parts)
