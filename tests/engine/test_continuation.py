"""The run loop continuing an answer across failed attempts (sluice.engine.continuation), without a server: scripted
providers that record what they were asked. Against the real fakes of every provider type: test_continuation_matrix.py.
"""

from __future__ import annotations

import dataclasses
import itertools

from sluice.engine.continuation import REQUEST
from sluice.events import PartialEvent, ResetEvent, SpliceEvent
from sluice.providers.base import Chunk
from sluice.providers.errors import PrefillRefused, ProviderUnavailable, StreamBroken
from sluice.providers.messages import ToolCallDelta
from sluice.structured.native import PROMPT
from sluice.workflows.shorthand import compile_schema
from tests.engine.test_run import CHAT, Pool, Scripted, run, workflow

SCHEMA = compile_schema({"reply": "string", "mood": "happy | sad"})


def texts(events: list[object]) -> str:
    return "".join(e.text for e in events if getattr(e, "type", "") == "delta")  # type: ignore[attr-defined]


async def test_prefill_continues_the_cut_answer_on_the_next_provider() -> None:
    a = Scripted("a", [(["Hello", " wo"], StreamBroken("cut"))])
    b = Scripted("b", [(["rld", "!"], None)])
    outcome, events, attempts, _ = await run(Pool(a, b, continuation="prefill"), workflow("a", "b"))
    assert outcome.data == {"content": "Hello world!"} and outcome.meta["continued"] is True
    assert events.kinds == ["status", "attempt", "delta", "delta", "failover", "attempt", "splice", "delta", "delta"]
    splice = events.events[6]
    assert isinstance(splice, SpliceEvent)
    assert (splice.from_attempt, splice.to_attempt, splice.at_chars, splice.method) == (1, 2, 8, "prefill")
    assert b.requests[0].prefill == "Hello wo" and b.requests[0].messages == CHAT.messages
    assert texts(events.events) == "Hello world!"  # what a client appended is the answer, no more, no less
    assert attempts.summary() == [("a", "failed", "stream_broken"), ("b", "succeeded", None)]


async def test_instruction_continues_and_the_repeated_tail_is_dropped() -> None:
    a = Scripted("a", [(["The capital of France is Par"], StreamBroken("cut"))])
    b = Scripted("b", [(["Paris", "."], None)])  # the model restates the word it was cut in
    outcome, events, _, _ = await run(Pool(a, b, continuation="instruction"), workflow("a", "b"))
    assert outcome.data == {"content": "The capital of France is Paris."}
    assert texts(events.events) == "The capital of France is Paris."
    sent = b.requests[0]
    assert sent.prefill is None and sent.gateway_turns == 2
    assert [(m.role, m.text) for m in sent.messages[-2:]] == [
        ("assistant", "The capital of France is Par"),
        ("user", REQUEST),
    ]


async def test_whitespace_at_the_seam_is_not_doubled_and_the_prefill_has_none_at_its_end() -> None:
    a = Scripted("a", [(["Hello "], StreamBroken("cut"))])
    b = Scripted("b", [([" world"], None)])
    outcome, _, _, _ = await run(Pool(a, b, continuation="prefill"), workflow("a", "b"))
    assert outcome.data == {"content": "Hello world"}
    assert b.requests[0].prefill == "Hello"  # Anthropic refuses a prefill that ends with whitespace


async def test_a_retry_on_the_same_provider_continues_too() -> None:
    a = Scripted("a", [(["Hel"], ProviderUnavailable("overloaded mid-stream")), (["lo"], None)])
    outcome, events, _, clock = await run(Pool(a, continuation="prefill"), workflow("a"))
    assert outcome.data == {"content": "Hello"} and clock.slept  # after the usual backoff
    assert "reset" not in events.kinds and events.kinds.count("splice") == 1
    assert a.requests[1].prefill == "Hel"


async def test_several_cuts_splice_each_time_from_the_last_delivered_character() -> None:
    a = Scripted("a", [(["Hel"], StreamBroken("cut"))])
    b = Scripted("b", [(["lo wo"], StreamBroken("cut again"))])
    c = Scripted("c", [(["rld"], None)])
    outcome, events, _, _ = await run(Pool(a, b, c, continuation="prefill"), workflow("a", "b", "c"))
    assert outcome.data == {"content": "Hello world"}
    splices = [(e.from_attempt, e.to_attempt, e.at_chars) for e in events.events if isinstance(e, SpliceEvent)]
    assert splices == [(1, 2, 3), (2, 3, 8)]
    assert c.requests[0].prefill == "Hello wo"


async def test_a_full_repeat_is_dropped_when_a_server_ignored_the_prefill() -> None:
    a = Scripted("a", [(["Hello wo"], StreamBroken("cut"))])
    b = Scripted("b", [(["Hello ", "world!"], None)])  # started over
    outcome, events, _, _ = await run(Pool(a, b, continuation="prefill"), workflow("a", "b"))
    assert outcome.data == {"content": "Hello world!"} and texts(events.events) == "Hello world!"


async def test_a_model_that_refuses_the_prefill_is_asked_by_instruction_at_once() -> None:
    a = Scripted("a", [(["Hello wo"], StreamBroken("cut"))])
    b = Scripted("b", [([], PrefillRefused("does not support assistant message prefill")), (["rld"], None)])
    outcome, events, attempts, clock = await run(Pool(a, b, continuation="prefill"), workflow("a", "b"))
    assert outcome.data == {"content": "Hello world"} and clock.slept == []
    methods = [e.method for e in events.events if isinstance(e, SpliceEvent)]
    assert methods == ["prefill", "instruction"]
    assert b.requests[1].prefill is None and b.requests[1].messages[-1].text == REQUEST
    assert attempts.summary()[1] == ("b", "failed", "prefill_refused")


async def test_a_provider_that_cannot_continue_takes_the_answer_back_before_it_starts_over() -> None:
    a = Scripted("a", [(["half"], StreamBroken("cut"))])
    b = Scripted("b", [(["whole"], None)])
    pool = Pool(a, b, continuation={"a": "prefill", "b": "off"})
    outcome, events, _, _ = await run(pool, workflow("a", "b"))
    assert outcome.data == {"content": "whole"} and "continued" not in outcome.meta
    assert events.kinds == ["status", "attempt", "delta", "failover", "reset", "attempt", "delta"]
    assert b.requests[0].prefill is None and b.requests[0].messages == CHAT.messages


async def test_a_workflow_with_continuation_off_resets_at_once_as_before() -> None:
    a = Scripted("a", [(["half"], StreamBroken("cut"))])
    b = Scripted("b", [(["whole"], None)])
    flow = dataclasses.replace(workflow("a", "b"), continuation="off")
    outcome, events, _, _ = await run(Pool(a, b, continuation="prefill"), flow)
    assert outcome.data == {"content": "whole"}
    assert events.kinds == ["status", "attempt", "delta", "reset", "failover", "attempt", "delta"]


async def test_half_streamed_tool_call_arguments_are_not_continued() -> None:
    @dataclasses.dataclass
    class Calling(Scripted):
        async def stream(self, request):  # type: ignore[no-untyped-def, override]
            self.requests.append(request)
            yield Chunk(tool_calls=(ToolCallDelta(0, id="call_1", name="get_weather", arguments='{"ci'),))
            raise StreamBroken("cut inside the arguments")

    a = Calling("a", [])
    b = Scripted("b", [(["fine"], None)])
    outcome, events, _, _ = await run(Pool(a, b, continuation="prefill"), workflow("a", "b"))
    assert outcome.data == {"content": "fine"} and "splice" not in events.kinds
    assert events.kinds.index("reset") < events.kinds.index("failover")
    assert b.requests[0].prefill is None


async def test_structured_output_continues_by_prompt_and_the_spliced_whole_validates() -> None:
    a = Scripted("a", [(['{"reply": "Hel'], StreamBroken("cut inside a string"))])
    b = Scripted("b", [(['lo there", "mo', 'od": "happy"}'], None)])
    outcome, events, _, _ = await run(Pool(a, b, continuation="prefill"), workflow("a", "b", schema=SCHEMA))
    assert outcome.data == {"reply": "Hello there", "mood": "happy"} and outcome.meta["continued"] is True
    assert outcome.meta["structured_mode"] == PROMPT
    # The partial object grows across the seam and never shrinks.
    replies = [e.data.get("reply", "") for e in events.events if isinstance(e, PartialEvent)]
    assert replies and all(later.startswith(earlier) for earlier, later in itertools.pairwise(replies))
    assert replies[-1] == "Hello there"
    assert "Hel" in b.requests[0].prefill and "JSON" in (b.requests[0].system or "")


async def test_a_spliced_answer_that_fails_its_schema_falls_back_to_reset_and_the_re_ask() -> None:
    a = Scripted("a", [(['{"reply": "Hel'], StreamBroken("cut"))])
    b = Scripted("b", [(['lo", "mood": "angry"}'], None), (['{"reply": "Hi", "mood": "sad"}'], None)])
    outcome, events, _, _ = await run(Pool(a, b, continuation="prefill"), workflow("a", "b", schema=SCHEMA))
    assert outcome.data == {"reply": "Hi", "mood": "sad"} and "continued" not in outcome.meta
    reset = events.kinds.index("reset")
    assert events.kinds.index("splice") < reset < len(events.kinds) - 1
    assert isinstance(events.events[reset], ResetEvent)
    reasked = b.requests[1]
    assert reasked.reasks == 1 and reasked.prefill is None
    assert reasked.messages[-2].text == '{"reply": "Hello", "mood": "angry"}'  # the whole bad answer, quoted
