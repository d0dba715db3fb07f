"""The embeddings loop without a server: in-memory ports, scripted embedders, an injected clock and sleep."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from sluice.engine.breaker import BreakerPolicy
from sluice.engine.embed import EmbedInput, EmbedRunner
from sluice.engine.retry import RetryPolicy
from sluice.engine.run import Runner
from sluice.lifecycle.outcome import Outcome
from sluice.providers.base import EmbeddingRequest, Embeddings, Usage
from sluice.providers.errors import InvalidRequest, ProviderError, ProviderUnavailable
from sluice.workflows.model import ChainEntry, Timeouts, Workflow
from tests.engine.test_run import Attempts, Breakers, Events


@dataclasses.dataclass
class Embedder:
    """Answers each call from a script: an error to raise, a number of vectors, or a pause (seconds)."""

    name: str
    script: list[Any] = dataclasses.field(default_factory=list)
    requests: list[EmbeddingRequest] = dataclasses.field(default_factory=list)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else None
        if isinstance(step, ProviderError):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
        count = step if isinstance(step, int) else len(request.inputs)
        size = request.dimensions or 3
        return Embeddings(vectors=tuple((float(i),) * size for i in range(count)), usage=Usage(input_tokens=5))

    async def aclose(self) -> None:
        return None


@dataclasses.dataclass
class TextOnly:
    """A provider whose type has no embeddings (no `embed`)."""

    name: str

    async def aclose(self) -> None:
        return None


class Pool:
    def __init__(self, *providers: Any, policy: BreakerPolicy | None = None) -> None:
        self.providers = {p.name: p for p in providers}
        self.policy = policy or BreakerPolicy()

    def get(self, name: str) -> Any:
        return self.providers[name]

    def dialect(self, name: str) -> str:
        return "simulated"

    def breaker_policy(self, name: str) -> BreakerPolicy:
        return self.policy


def setup(*providers: Any, policy: BreakerPolicy | None = None) -> tuple[EmbedRunner, Attempts, Breakers, list[float]]:
    attempts, breakers, slept = Attempts(), Breakers(), []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    runner = Runner(
        Pool(*providers, policy=policy),
        attempts,
        breakers,
        retry=RetryPolicy(retries=1),
        clock=lambda: 1000.0,
        sleep=sleep,
        rand=lambda: 0.5,
    )
    return EmbedRunner(runner), attempts, breakers, slept


def workflow(*names: str, **entry: Any) -> Workflow:
    return Workflow(name="wf", chain=tuple(ChainEntry(provider=n, model=f"{n}-m", **entry) for n in names))


async def run(
    embedder: EmbedRunner, flow: Workflow, *inputs: str, dimensions: int | None = None
) -> tuple[Outcome, Events]:
    events = Events()
    outcome = await embedder.run(events, "req-1", flow, EmbedInput(inputs=inputs or ("a", "b"), dimensions=dimensions))
    return outcome, events


async def test_success_keeps_the_vectors_off_the_record() -> None:
    one = Embedder("one")
    embedder, attempts, _, _ = setup(one)
    outcome, events = await run(embedder, workflow("one"), "x", "y", dimensions=4)
    assert outcome.status == "completed" and outcome.data == {"count": 2, "dimensions": 4}
    assert isinstance(outcome.result, Embeddings) and len(outcome.result.vectors) == 2
    assert outcome.meta["usage"] == {"input_tokens": 5, "output_tokens": 0}
    assert outcome.meta["provider"] == "one" and outcome.meta["model"] == "one-m"
    assert one.requests == [EmbeddingRequest(model="one-m", inputs=("x", "y"), dimensions=4, connect_timeout=10.0)]
    assert events.kinds == ["status", "attempt"]
    assert [(a.status, a.tokens_in, a.tokens_out) for a in attempts.rows] == [("succeeded", 5, 0)]


async def test_a_retryable_error_is_retried_then_fails_over() -> None:
    one = Embedder("one", [ProviderUnavailable("down"), ProviderUnavailable("down")])
    embedder, attempts, _, slept = setup(one, Embedder("two"))
    outcome, events = await run(embedder, workflow("one", "two"))
    assert outcome.status == "completed" and outcome.meta["provider"] == "two"
    assert attempts.summary() == [
        ("one", "failed", "provider_unavailable"),
        ("one", "failed", "provider_unavailable"),
        ("two", "succeeded", None),
    ]
    assert slept == [0.125]  # one retry with backoff (rand 0.5 times base 0.25)
    assert events.kinds == ["status", "attempt", "attempt", "failover", "attempt"]
    assert [a.attempt for a in attempts.rows] == [1, 2, 3]


async def test_a_provider_without_embed_is_unsupported() -> None:
    embedder, attempts, _, slept = setup(TextOnly("text"), Embedder("two"))
    outcome, _ = await run(embedder, workflow("text", "two"))
    assert outcome.status == "completed"
    assert attempts.summary() == [("text", "failed", "unsupported_by_provider"), ("two", "succeeded", None)]
    assert slept == []


async def test_an_invalid_request_ends_the_run() -> None:
    embedder, attempts, _, _ = setup(Embedder("one", [InvalidRequest("bad input")]), Embedder("two"))
    outcome, _ = await run(embedder, workflow("one", "two"))
    assert outcome.status == "failed" and outcome.error == {"code": "invalid_request", "message": "bad input"}
    assert attempts.summary() == [("one", "failed", "invalid_request")]


async def test_answers_that_do_not_fit_fail_the_attempt() -> None:
    # One vector for two inputs; then a provider that ignores `dimensions`.
    short = Embedder("short", [1])

    @dataclasses.dataclass
    class Fixed(Embedder):
        async def embed(self, request: EmbeddingRequest) -> Embeddings:
            return Embeddings(vectors=tuple((0.0,) * 3 for _ in request.inputs))

    embedder, attempts, _, _ = setup(short, Fixed("fixed"), Embedder("good"))
    outcome, _ = await run(embedder, workflow("short", "fixed", "good", retries=0), dimensions=8)
    assert outcome.status == "completed" and outcome.meta["provider"] == "good"
    assert attempts.summary() == [
        ("short", "failed", "stream_broken"),
        ("fixed", "failed", "unsupported_by_provider"),
        ("good", "succeeded", None),
    ]
    assert "answered 3 dimensions, not the 8 asked" in (attempts.rows[1].error_message or "")


async def test_the_total_deadline_applies() -> None:
    slow = Embedder("slow", [5.0])
    embedder, attempts, _, _ = setup(slow, Embedder("two"))
    flow = workflow("slow", "two", retries=0, timeouts=Timeouts(total=0.05))
    outcome, _ = await run(embedder, flow)
    assert outcome.status == "completed"
    assert attempts.summary()[0] == ("slow", "failed", "provider_timeout")


async def test_an_open_breaker_skips_the_provider() -> None:
    policy = BreakerPolicy(failures=1, cooldown=30)
    one = Embedder("one", [ProviderUnavailable("down")])
    embedder, attempts, breakers, _ = setup(one, Embedder("two"), policy=policy)
    await run(embedder, workflow("one", "two", retries=0))
    assert breakers.records["one/one-m"]["open_until"] == 1030.0
    outcome, _ = await run(embedder, workflow("one", "two", retries=0))
    assert outcome.status == "completed" and len(one.requests) == 1
    assert attempts.summary()[-2:] == [("one", "skipped", "circuit_open"), ("two", "succeeded", None)]


async def test_every_provider_failing() -> None:
    embedder, _, _, _ = setup(TextOnly("a"), Embedder("b", [ProviderUnavailable("b is down")]))
    outcome, _ = await run(embedder, workflow("a", "b", retries=0))
    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error["code"] == "provider_unavailable"
    assert outcome.error["message"] == "every provider failed; last error: b is down"
    assert [a["status"] for a in outcome.meta["attempts"]] == ["failed", "failed"]
