"""The chaos suite's checker itself: it must catch what it claims to catch."""

from tests.chaos.invariants import Observed, violations


def run(*events: tuple[int, str], restarts: int = 0, status: str = "completed", **extra: object) -> list[str]:
    listed = [{"seq": seq, "type": kind, **extra} for seq, kind in events]
    return violations(Observed("r", listed, restarts, status))


def test_a_clean_stream_passes() -> None:
    assert run((1, "status"), (2, "delta"), (3, "response")) == []
    assert run((1, "status"), (2, "error"), status="failed") == []


def test_it_catches_missing_doubled_and_early_terminals() -> None:
    assert any("0 terminal" in p for p in run((1, "status"), (2, "delta")))
    assert any("2 terminal" in p for p in run((1, "response"), (2, "error")))
    assert any("after the terminal" in p for p in run((1, "response"), (2, "delta")))
    assert any("store says failed" in p for p in run((1, "response"), status="failed"))


def test_a_cancelled_request_ends_with_an_error_coded_cancelled_and_the_store_agrees() -> None:
    assert run((1, "status"), (2, "error"), status="cancelled", code="cancelled") == []
    assert any("store says failed" in p for p in run((1, "error"), status="failed", code="cancelled"))
    assert any("store says cancelled" in p for p in run((1, "error"), status="cancelled", code="timeout"))


def test_it_catches_gaps_and_repeats_unless_a_restart_explains_them() -> None:
    assert any("duplicate" in p for p in run((1, "status"), (1, "status"), (2, "response")))
    assert any("gap" in p for p in run((1, "status"), (3, "response")))
    assert any("gap" in p for p in run((1, "status"), (10001, "reset"), (10002, "response")))  # no restart
    assert run((1, "status"), (10001, "reset"), (10002, "response"), restarts=1) == []
    assert any("gap" in p for p in run((1, "status"), (10001, "status"), (10002, "response"), restarts=1))


def test_it_catches_an_answer_that_is_not_what_streamed_across_splices_and_resets() -> None:
    def answer(*events: dict[str, object], content: str) -> list[str]:
        numbered = [{"seq": i + 1, **e} for i, e in enumerate(events)]
        numbered.append({"seq": len(events) + 1, "type": "response", "data": {"content": content}})
        return violations(Observed("r", numbered, 0, "completed"))

    hel, lo = {"type": "delta", "text": "Hel"}, {"type": "delta", "text": "lo"}
    splice = {"type": "splice", "at_chars": 3}
    assert answer(hel, splice, lo, content="Hello") == []
    assert any("not what streamed" in p for p in answer(hel, splice, hel, lo, content="Hello"))  # a doubled seam
    assert any("not what streamed" in p for p in answer(hel, splice, content="Hello"))  # a lost continuation
    assert answer(hel, {"type": "reset"}, lo, content="lo") == []  # a reset takes back what came before it
