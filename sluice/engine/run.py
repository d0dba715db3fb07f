"""Run one request through its workflow's provider chain, streaming everything into the channel.

The chain is a plain loop: each entry is one attempt; a retryable failure moves to the next entry (emitting `reset`
if output had already streamed, then `failover`), a fail-fast one ends the run. The final answer always comes from a
single attempt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sluice.engine.channel import Channel
from sluice.engine.providers import ProviderPool
from sluice.events import AttemptEvent, DeltaEvent, ErrorEvent, FailoverEvent, PartialEvent, ResetEvent, StatusEvent
from sluice.providers.base import Message, ProviderRequest, Usage
from sluice.providers.errors import ProviderError
from sluice.store import Store
from sluice.structured import PartialStream, finalize
from sluice.workflows.model import ChainEntry, Workflow


@dataclass
class Outcome:
    status: str
    data: Any = None
    error: dict[str, str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    first_token_at: datetime | None = None


@dataclass
class _AttemptResult:
    text: str
    usage: Usage | None
    ttft_ms: float | None
    first_token_at: datetime | None


def build_request(entry: ChainEntry, workflow: Workflow, body: dict[str, Any]) -> ProviderRequest:
    messages = tuple(Message(role=m["role"], content=m["content"]) for m in body["messages"])
    params = dict(entry.params)
    for name in ("temperature", "max_tokens", "top_p"):
        if body.get(name) is not None:
            params[name] = body[name]
    return ProviderRequest(
        model=entry.model,
        messages=messages,
        system=body.get("system") or workflow.system,
        schema=workflow.schema,
        params=params,
    )


class Runner:
    def __init__(self, providers: ProviderPool, store: Store) -> None:
        self.providers = providers
        self.store = store

    async def run(self, channel: Channel, request_id: str, workflow: Workflow, body: dict[str, Any]) -> Outcome:
        started = time.perf_counter()
        await channel.emit(StatusEvent(status="running"))
        attempts: list[dict[str, Any]] = []
        last_error: ProviderError | None = None
        for number, entry in enumerate(workflow.chain, start=1):
            label = f"{entry.provider}/{entry.model}"
            await channel.emit(AttemptEvent(provider=entry.provider, model=entry.model, attempt=number))
            attempt_started, wall_started = time.perf_counter(), datetime.now(UTC)
            streamed = [False]
            try:
                result = await self._attempt(channel, entry, workflow, body, attempt_started, streamed)
                data = self._final_data(workflow, result.text)
            except ProviderError as error:
                last_error = error
                attempts.append({"provider": entry.provider, "model": entry.model, "status": "failed",
                                 "reason": error.message})
                await self.store.record_attempt(
                    request_id, attempt=number, provider=entry.provider, model=entry.model, status="failed",
                    error_code=error.code, error_message=error.message, started_at=wall_started,
                    duration_ms=(time.perf_counter() - attempt_started) * 1000,
                )
                if streamed[0]:
                    await channel.emit(ResetEvent(reason=f"attempt {number} failed: {error.message}"))
                following = workflow.chain[number] if number < len(workflow.chain) else None
                if error.fail_fast or following is None:
                    break
                await channel.emit(FailoverEvent(from_=label, to=f"{following.provider}/{following.model}",
                                                 error=error.message))
                continue
            usage = result.usage or Usage()
            duration_ms = (time.perf_counter() - attempt_started) * 1000
            await self.store.record_attempt(
                request_id, attempt=number, provider=entry.provider, model=entry.model, status="succeeded",
                ttft_ms=result.ttft_ms, duration_ms=duration_ms, tokens_in=usage.input_tokens,
                tokens_out=usage.output_tokens, started_at=wall_started,
            )
            attempts.append({"provider": entry.provider, "model": entry.model, "status": "succeeded"})
            meta = {
                "workflow": workflow.name, "provider": entry.provider, "model": entry.model,
                "attempts": attempts, "ttft_ms": _round(result.ttft_ms),
                "duration_ms": _round((time.perf_counter() - started) * 1000),
                "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
                "structured_output": workflow.schema is not None,
            }
            return Outcome(status="completed", data=data, meta=meta, first_token_at=result.first_token_at)
        error = last_error or ProviderError("the workflow has no provider to run")
        message = f"every provider failed; last error: {error.message}" if len(attempts) > 1 else error.message
        return Outcome(
            status="failed",
            error={"code": error.code, "message": message},
            meta={"workflow": workflow.name, "attempts": attempts,
                  "duration_ms": _round((time.perf_counter() - started) * 1000)},
        )

    async def _attempt(
        self, channel: Channel, entry: ChainEntry, workflow: Workflow, body: dict[str, Any], started: float,
        streamed: list[bool],
    ) -> _AttemptResult:
        provider = self.providers.get(entry.provider)
        request = build_request(entry, workflow, body)
        parts: list[str] = []
        usage: Usage | None = None
        ttft_ms: float | None = None
        first_token_at: datetime | None = None
        partial = PartialStream(workflow.schema) if workflow.schema is not None else None
        async for chunk in provider.stream(request):
            if chunk.usage is not None:
                usage = chunk.usage
            if not chunk.text:
                continue
            if ttft_ms is None:
                ttft_ms = (time.perf_counter() - started) * 1000
                first_token_at = datetime.now(UTC)
            parts.append(chunk.text)
            streamed[0] = True
            await channel.emit(DeltaEvent(text=chunk.text))
            if partial is not None:
                update = partial.feed(chunk.text)
                if update is not None:
                    await channel.emit(PartialEvent(data=update))
        if partial is not None and (pending := partial.flush()) is not None:
            await channel.emit(PartialEvent(data=pending))
        return _AttemptResult(text="".join(parts), usage=usage, ttft_ms=ttft_ms, first_token_at=first_token_at)

    @staticmethod
    def _final_data(workflow: Workflow, text: str) -> Any:
        if workflow.schema is None:
            return {"content": text}
        return finalize(workflow.schema, text)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def error_event(outcome: Outcome) -> ErrorEvent:
    assert outcome.error is not None
    return ErrorEvent(code=outcome.error["code"], message=outcome.error["message"])
