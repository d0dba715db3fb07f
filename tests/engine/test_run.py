"""The run loop without a server: in-memory ports (`sluice.engine.ports`), scripted providers, an injected clock and
sleep. The same loop runs against real fake providers through a gateway in test_fault_matrix.py."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from sluice.engine.breaker import BreakerPolicy
from sluice.engine.chat import ChatInput
from sluice.engine.ports import AttemptRecord
from sluice.engine.retry import RetryPolicy
from sluice.engine.run import Runner
from sluice.events import Event, WireEvent
from sluice.lifecycle.outcome import Outcome
from sluice.providers.base import Chunk, Message, ProviderRequest
from sluice.providers.errors import InvalidRequest, ProviderError, ProviderUnavailable, RateLimited, StreamBroken
from sluice.providers.messages import ThinkingDelta
from sluice.workflows.model import ChainEntry, Workflow
from sluice.workflows.shorthand import compile_schema


@dataclasses.dataclass
class Scripted:
    """A provider that answers each attempt from a script: text pieces, then optionally an error."""

    name: str
    answers: list[tuple[list[str], ProviderError | None]]
    requests: list[ProviderRequest] = dataclasses.field(default_factory=list)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        pieces, error = self.answers.pop(0) if self.answers else (["ok"], None)
        for piece in pieces:
            yield Chunk(text=piece)
        if error is not None:
            raise error

    async def aclose(self) -> None:
        return None


class Pool:
    def __init__(
        self, *providers: Scripted, policy: BreakerPolicy | None = None, continuation: str | dict[str, str] = "off"
    ) -> None:
        self.providers = {p.name: p for p in providers}
        self.policy = policy or BreakerPolicy()
        self.methods = continuation  # off: the answer starts over after a failure (test_continuation.py: the rest)

    def continuation(self, name: str) -> str:
        return self.methods if isinstance(self.methods, str) else self.methods.get(name, "off")

    def get(self, name: str) -> Scripted:
        return self.providers[name]

    def dialect(self, name: str) -> str:
        return "simulated"  # asks for nothing extra: the scripted answers are the JSON

    def breaker_policy(self, name: str) -> BreakerPolicy:
        return self.policy


class Events:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def emit(self, event: Event) -> WireEvent | None:
        self.events.append(event)
        return WireEvent(len(self.events), event.type, "", event)

    @property
    def kinds(self) -> list[str]:
        return [e.type for e in self.events]


class Attempts:
    def __init__(self) -> None:
        self.rows: list[AttemptRecord] = []

    async def record_attempt(self, attempt: AttemptRecord) -> None:
        self.rows.append(attempt)

    def summary(self) -> list[tuple[str, str, str | None]]:
        return [(a.provider, a.status, a.error_code) for a in self.rows]


class Breakers:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, object]] = {}

    async def breaker_state(self, key: str) -> dict[str, object] | None:
        return self.records.get(key)

    async def set_breaker_state(self, key: str, state: dict[str, object], ttl: float) -> None:
        self.records[key] = state


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def workflow(*providers: str, schema: dict[str, object] | None = None, retries: int | None = None) -> Workflow:
    chain = tuple(ChainEntry(provider=p, model=f"{p}-model", retries=retries) for p in providers)
    return Workflow(name="w", chain=chain, schema=schema)


CHAT = ChatInput(messages=(Message(role="user", content="hi"),))


def runner(pool: Pool, attempts: Attempts, breakers: Breakers, clock: Clock) -> Runner:
    return Runner(
        pool, attempts, breakers, retry=RetryPolicy(retries=1), clock=clock, sleep=clock.sleep, rand=lambda: 0.5
    )


async def run(
    pool: Pool, flow: Workflow, *, breakers: Breakers | None = None, clock: Clock | None = None, chat: ChatInput = CHAT
) -> tuple[Outcome, Events, Attempts, Clock]:
    events, attempts, clock = Events(), Attempts(), clock or Clock()
    outcome = await runner(pool, attempts, breakers or Breakers(), clock).run(events, "req-1", flow, chat)
    return outcome, events, attempts, clock


async def test_a_first_attempt_that_works_is_the_answer() -> None:
    outcome, events, attempts, _ = await run(Pool(Scripted("a", [(["Hel", "lo"], None)])), workflow("a"))
    assert outcome.status == "completed" and outcome.data == {"content": "Hello"}
    assert events.kinds == ["status", "attempt", "delta", "delta"]
    assert attempts.summary() == [("a", "succeeded", None)]


async def test_a_retryable_error_is_retried_on_the_same_provider_after_backoff() -> None:
    pool = Pool(Scripted("a", [(["par"], ProviderUnavailable("503")), (["whole"], None)]))
    outcome, events, attempts, clock = await run(pool, workflow("a"))
    assert outcome.data == {"content": "whole"}
    assert clock.slept == [0.5 * 0.25]  # full jitter (rand 0.5) of the first backoff step
    assert events.kinds == ["status", "attempt", "delta", "reset", "attempt", "delta"]
    assert attempts.summary() == [("a", "failed", "provider_unavailable"), ("a", "succeeded", None)]


async def test_retry_after_is_waited_for_when_short_and_a_long_one_moves_on() -> None:
    short = Pool(Scripted("a", [([], RateLimited("429", retry_after=2.0)), (["x"], None)]))
    outcome, _, _, clock = await run(short, workflow("a"))
    assert outcome.status == "completed" and clock.slept == [2.0]
    long = Pool(Scripted("a", [([], RateLimited("429", retry_after=60.0))]), Scripted("b", [(["b"], None)]))
    outcome, events, _, clock = await run(long, workflow("a", "b"))
    assert outcome.data == {"content": "b"} and clock.slept == []
    assert "failover" in events.kinds


async def test_a_broken_stream_fails_over_and_retracts_what_streamed() -> None:
    # The next provider cannot continue the answer (continuation: off), so it is taken back before it starts over.
    pool = Pool(Scripted("a", [(["half an"], StreamBroken("cut"))]), Scripted("b", [(["backup"], None)]))
    outcome, events, attempts, _ = await run(pool, workflow("a", "b"))
    assert outcome.data == {"content": "backup"} and outcome.meta["provider"] == "b"
    assert events.kinds == ["status", "attempt", "delta", "failover", "reset", "attempt", "delta"]
    failover = events.events[3]
    assert (failover.from_, failover.to) == ("a/a-model", "b/b-model")
    assert attempts.summary() == [("a", "failed", "stream_broken"), ("b", "succeeded", None)]


async def test_a_fail_fast_error_ends_the_run_without_failing_over() -> None:
    pool = Pool(Scripted("a", [([], InvalidRequest("400: bad"))]), Scripted("b", []))
    outcome, events, attempts, _ = await run(pool, workflow("a", "b"))
    assert outcome.status == "failed" and outcome.error == {"code": "invalid_request", "message": "400: bad"}
    assert "failover" not in events.kinds and pool.get("b").requests == []
    assert attempts.summary() == [("a", "failed", "invalid_request")]


async def test_every_provider_failing_names_the_last_error() -> None:
    pool = Pool(Scripted("a", [([], StreamBroken("a cut"))]), Scripted("b", [([], StreamBroken("b cut"))]))
    outcome, *_ = await run(pool, workflow("a", "b", retries=0))
    assert outcome.error == {"code": "stream_broken", "message": "every provider failed; last error: b cut"}
    assert [a["status"] for a in outcome.meta["attempts"]] == ["failed", "failed"]


async def test_a_schema_violation_is_reasked_once_with_the_validation_error() -> None:
    schema = compile_schema({"reply": "string", "mood": "happy | sad"})
    bad, good = '{"reply": "hi", "mood": "angry"}', '{"reply": "hi", "mood": "happy"}'
    provider = Scripted("a", [([bad], None), ([good], None)])
    outcome, events, attempts, _ = await run(Pool(provider), workflow("a", schema=schema))
    assert outcome.data == {"reply": "hi", "mood": "happy"}
    assert attempts.summary() == [("a", "failed", "schema_violation"), ("a", "succeeded", None)]
    reasked = provider.requests[1].messages
    assert [m.role for m in reasked] == ["user", "assistant", "user"] and "mood" in reasked[-1].content
    assert "reset" in events.kinds and "partial" in events.kinds


async def test_the_breaker_opens_skips_then_probes_after_the_cooldown() -> None:
    policy = BreakerPolicy(failures=2, cooldown=30, probe_timeout=10)
    flaky = Scripted("a", [([], StreamBroken("cut")), ([], StreamBroken("cut"))])
    pool = Pool(flaky, Scripted("b", [(["b1"], None), (["b2"], None), (["b3"], None), (["b4"], None)]), policy=policy)
    breakers, clock = Breakers(), Clock()
    for _ in range(2):  # two health failures in a row open it
        await run(pool, workflow("a", "b", retries=0), breakers=breakers, clock=clock)
    assert breakers.records["a/a-model"]["open_until"] == clock.now + 30
    _, _, attempts, _ = await run(pool, workflow("a", "b", retries=0), breakers=breakers, clock=clock)
    assert attempts.summary() == [("a", "skipped", "circuit_open"), ("b", "succeeded", None)]
    assert len(flaky.requests) == 2  # the skipped attempt never reached the provider
    clock.now += 31  # cooldown over: one probe goes through, succeeds, and closes the breaker
    outcome, _, attempts, _ = await run(pool, workflow("a", "b", retries=0), breakers=breakers, clock=clock)
    assert attempts.summary() == [("a", "succeeded", None)] and outcome.meta["provider"] == "a"
    assert breakers.records["a/a-model"] == {"failures": 0, "open_until": 0.0, "probe_until": 0.0}


async def test_request_overrides_reach_the_provider_request() -> None:
    provider = Scripted("a", [(["x"], None)])
    chat = ChatInput(messages=CHAT.messages, system="be brief", params={"temperature": 0.2})
    await run(Pool(provider), workflow("a"), chat=chat)
    sent = provider.requests[0]
    assert sent.system == "be brief" and sent.params == {"temperature": 0.2} and sent.model == "a-model"


@dataclasses.dataclass
class Chunks:
    """A provider that answers with these chunks; `reads_native` as the Anthropic adapter says it."""

    name: str
    chunks: list[Chunk]
    reads_native: bool = False
    requests: list[ProviderRequest] = dataclasses.field(default_factory=list)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        return None


async def test_reasoning_streams_as_thinking_events_and_stays_in_the_answer_with_its_signature() -> None:
    provider = Chunks(
        "a",
        [
            Chunk(thinking=(ThinkingDelta(0, text="Two "),)),
            Chunk(thinking=(ThinkingDelta(0, text="plus two."),)),
            Chunk(thinking=(ThinkingDelta(0, signature="c2ln"),)),
            Chunk(thinking=(ThinkingDelta(1, redacted="b3BhcXVl"),)),
            Chunk(text="4"),
            Chunk(finish_reason="stop", stop_sequence="\n\n"),
        ],
    )
    outcome, events, *_ = await run(Pool(provider), workflow("a"))  # type: ignore[arg-type]
    assert events.kinds == ["status", "attempt", "thinking", "thinking", "thinking", "thinking", "delta"]
    assert [e.payload() for e in events.events[2:6]] == [
        {"index": 0, "text": "Two "},
        {"index": 0, "text": "plus two."},
        {"index": 0, "text": "", "signature": "c2ln"},
        {"index": 1, "text": "", "redacted": "b3BhcXVl"},
    ]
    assert outcome.data == {
        "content": "4",
        "thinking": [
            {"type": "thinking", "thinking": "Two plus two.", "signature": "c2ln"},
            {"type": "redacted_thinking", "data": "b3BhcXVl"},
        ],
    }
    assert outcome.meta["stop_sequence"] == "\n\n" and outcome.meta["finish_reason"] == "stop"


async def test_reasoning_that_streamed_before_a_failure_is_reset() -> None:
    @dataclasses.dataclass
    class ThinksThenBreaks(Chunks):
        async def stream(self, request: ProviderRequest) -> AsyncIterator[Chunk]:
            yield Chunk(thinking=(ThinkingDelta(0, text="Hmm"),))
            raise StreamBroken("cut")

    pool = Pool(ThinksThenBreaks("a", []), Scripted("b", [(["fine"], None)]))  # type: ignore[arg-type]
    outcome, events, *_ = await run(pool, workflow("a", "b", retries=0))
    assert events.kinds == ["status", "attempt", "thinking", "reset", "failover", "attempt", "delta"]
    assert outcome.data == {"content": "fine"}  # the failed attempt's reasoning is not in the answer


async def test_untranslated_parts_fail_over_from_a_provider_that_cannot_take_the_native_body() -> None:
    other = Chunks("a", [Chunk(text="without the document")])
    anthropic = Chunks("b", [Chunk(text="with it")], reads_native=True)
    native = {"body": {"messages": []}, "untranslated": ["messages[0].content[0] (document)"]}
    chat = ChatInput(messages=CHAT.messages, native=native)
    outcome, _, attempts, _ = await run(Pool(other, anthropic), workflow("a", "b"), chat=chat)  # type: ignore[arg-type]
    assert outcome.data == {"content": "with it"}
    assert attempts.summary() == [("a", "failed", "unsupported_by_provider"), ("b", "succeeded", None)]
    assert "messages[0].content[0] (document)" in (attempts.rows[0].error_message or "")
    assert other.requests == [] and anthropic.requests[0].native == native
