"""The request state machine: the moves DESIGN.md §2 allows, and none out of a terminal state."""

from __future__ import annotations

import pytest

from sluice.lifecycle.states import (
    AWAITING_CALLBACK,
    CANCELLED,
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    STATES,
    STREAMING,
    TERMINAL,
    UNFINISHED,
    VALIDATING,
    IllegalMove,
    can_move,
    move,
    sources,
)


def test_the_happy_paths_of_design_section_2() -> None:
    for path in (
        [QUEUED, RUNNING, COMPLETED],
        [QUEUED, RUNNING, STREAMING, VALIDATING, COMPLETED],
        [QUEUED, RUNNING, STREAMING, AWAITING_CALLBACK, COMPLETED],
        [QUEUED, RUNNING, AWAITING_CALLBACK, FAILED],
        [QUEUED, RUNNING, QUEUED, RUNNING, FAILED],  # a run that stopped runs again
        [QUEUED, CANCELLED],  # refused before it ran
    ):
        state = path[0]
        for target in path[1:]:
            state = move(state, target)
        assert state == path[-1]


@pytest.mark.parametrize("final", TERMINAL)
def test_a_terminal_state_is_never_left(final: str) -> None:
    for target in STATES:
        assert not can_move(final, target)
    with pytest.raises(IllegalMove, match=f"a request that is {final} cannot become running"):
        move(final, RUNNING)


def test_awaiting_callback_only_ends_and_never_runs_again() -> None:
    assert {t for t in STATES if can_move(AWAITING_CALLBACK, t)} == set(TERMINAL)
    with pytest.raises(IllegalMove, match="allowed: cancelled, completed, failed"):
        move(AWAITING_CALLBACK, QUEUED)


def test_sources_are_the_store_update_conditions() -> None:
    assert sources(COMPLETED, among=UNFINISHED) == (QUEUED, RUNNING, STREAMING, VALIDATING)
    assert sources(COMPLETED) == (*UNFINISHED, AWAITING_CALLBACK)
    assert sources(QUEUED) == (RUNNING, STREAMING, VALIDATING)
    with pytest.raises(IllegalMove, match="unknown state 'paused'"):
        move("paused", RUNNING)
