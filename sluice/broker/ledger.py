"""The in-process budget ledger behind the memory broker's `reserve`/`settle`: the same rules as the Redis script
(`redis_scripts.RESERVE`/`SETTLE`), for one process. Its state starts empty and is seeded from the store (the durable
copy) the first time a budget is met (`Refusal.limit == "unseeded"`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sluice.spend.limits import Allowance, Hold, Refusal, Reservation

WINDOW = 60.0  # rpm and tpm are counted in fixed minute windows


@dataclass
class _Budget:
    spent: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # request id → (nano, expires)

    def held(self, now: float) -> int:
        expired = [key for key, (_, expires) in self.holds.items() if expires <= now]
        for key in expired:
            del self.holds[key]
        return sum(nano for nano, _ in self.holds.values())


class MemoryLedger:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._budgets: dict[str, _Budget] = {}
        self._windows: dict[tuple[str, str, int], int] = {}  # (scope, rpm|tpm, minute) → count

    def reserve(self, hold: Hold, allowances: Sequence[Allowance]) -> Reservation | Refusal:
        now = self._clock()
        minute = math.floor(now / WINDOW)
        retry = (minute + 1) * WINDOW - now
        for allowance in allowances:
            if allowance.budget_key is not None and allowance.budget_nano is not None:
                budget = self._budgets.get(allowance.budget_key)
                if budget is None:
                    return Refusal(allowance.scope, "unseeded")
                held = budget.held(now)
                if budget.spent + held + hold.nano > allowance.budget_nano:
                    return Refusal(allowance.scope, "budget", spent_nano=budget.spent, held_nano=held)
            if allowance.rpm is not None and self._windows.get((allowance.scope, "rpm", minute), 0) + 1 > allowance.rpm:
                return Refusal(allowance.scope, "rpm", retry_after=retry)
            tokens = self._windows.get((allowance.scope, "tpm", minute), 0)
            if allowance.tpm is not None and tokens + hold.tokens > allowance.tpm:
                return Refusal(allowance.scope, "tpm", retry_after=retry)
        for allowance in allowances:
            if allowance.budget_key is not None and allowance.budget_nano is not None:
                self._budgets[allowance.budget_key].holds[hold.id] = (hold.nano, now + hold.ttl)
            if allowance.rpm is not None:
                self._count((allowance.scope, "rpm", minute), 1)
            if allowance.tpm is not None:
                self._count((allowance.scope, "tpm", minute), hold.tokens)
        return Reservation(hold, tuple(allowances), minute)

    def settle(self, reservation: Reservation, nano: int, tokens: int, *, release: bool) -> None:
        for allowance in reservation.allowances:
            budget = self._budgets.get(allowance.budget_key) if allowance.budget_key else None
            if budget is not None:
                if release:
                    budget.holds.pop(reservation.hold.id, None)
                budget.spent += nano
            window = (allowance.scope, "tpm", reservation.minute)
            if allowance.tpm is not None and window in self._windows:
                self._windows[window] += tokens - reservation.hold.tokens

    def seed(self, budget_key: str, spent_nano: int) -> None:
        self._budgets.setdefault(budget_key, _Budget(spent=spent_nano))

    def state(self, budget_key: str) -> tuple[int, int] | None:
        """(spent, held) of a budget, None if it is not seeded."""
        budget = self._budgets.get(budget_key)
        return None if budget is None else (budget.spent, budget.held(self._clock()))

    def _count(self, window: tuple[str, str, int], amount: int) -> None:
        self._windows[window] = self._windows.get(window, 0) + amount
        if len(self._windows) > 10_000:  # drop the windows that have passed
            current = window[2]
            self._windows = {key: value for key, value in self._windows.items() if key[2] >= current - 1}
