"""A request's states (DESIGN.md §2) and the moves allowed between them. Pure: no I/O.

    queued ──> running ──> (streaming) ──> (validating) ──> completed | failed | cancelled
                  ^  └──────────────┬──────────┘                ^
                  │                 └──> awaiting_callback ─────┘   (the webhook → callback step)
                  └── a run that stopped before it finished (a restart, a lost job) runs again

`queued` may also end at once: refused before it ran (cancelled, over budget, its workflow gone). A terminal state is
never left. The store applies these moves as conditional updates (`sources`), so of two instances finishing the same
request only the first one records its outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

QUEUED: Final = "queued"
RUNNING: Final = "running"
STREAMING: Final = "streaming"
VALIDATING: Final = "validating"
AWAITING_CALLBACK: Final = "awaiting_callback"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"

TERMINAL: Final = (COMPLETED, FAILED, CANCELLED)
# Accepted and not finished, with a job in the queue: a restart takes these up again. (`awaiting_callback` has no job:
# its wait lives in the store, see `sluice.delivery.callbacks`.)
UNFINISHED: Final = (QUEUED, RUNNING, STREAMING, VALIDATING)
STATES: Final = (*UNFINISHED, AWAITING_CALLBACK, *TERMINAL)

_RUN = (RUNNING, STREAMING, VALIDATING)
MOVES: Final[dict[str, frozenset[str]]] = {
    QUEUED: frozenset({RUNNING, *TERMINAL}),
    **{state: frozenset({*_RUN, QUEUED, AWAITING_CALLBACK, *TERMINAL}) for state in _RUN},
    AWAITING_CALLBACK: frozenset(TERMINAL),
    **{state: frozenset() for state in TERMINAL},
}


class IllegalMove(ValueError):
    """A move the lifecycle does not allow (e.g. out of a terminal state)."""


def is_terminal(state: str) -> bool:
    return state in TERMINAL


def can_move(current: str, target: str) -> bool:
    return target in MOVES.get(current, frozenset())


def move(current: str, target: str) -> str:
    """`target`, if a request in `current` may move there; else `IllegalMove` naming both."""
    if current not in MOVES:
        raise IllegalMove(f"unknown state {current!r}; states: {', '.join(STATES)}")
    if not can_move(current, target):
        allowed = ", ".join(sorted(MOVES[current])) or "none: it is final"
        raise IllegalMove(f"a request that is {current} cannot become {target} (allowed: {allowed})")
    return target


def sources(target: str, among: Iterable[str] = STATES) -> tuple[str, ...]:
    """The states from which a request may move to `target`: the condition of the store's update."""
    return tuple(state for state in among if can_move(state, target))
