"""Budgets and rate limits of API keys and projects, and what one request reserves against them. No I/O.

A key and its project may each have a budget in USD over a period (`total`, `daily`, `monthly`, in UTC), a number of
requests per minute (`rpm`) and of tokens per minute (`tpm`). A request is admitted only if it fits every limit of
both with its worst case: its counted input tokens plus its output cap (`max_tokens`, or the provider's own cap), at
the most expensive entry of its workflow's chain. That worst case is held while the request runs and released when it
ends, when what its attempts really cost is added to the spend (`sluice.spend.budgets`). So a budget is never
overrun by requests admitted together, however many instances admit them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PERIODS = ("total", "daily", "monthly")
NANO = 1_000_000_000  # budgets are counted in billionths of a dollar: integers, exact in Redis and in Lua
DEFAULT_OUTPUT_CAP = 4096  # the output a request without `max_tokens` may reach, when no provider caps it


@dataclass(frozen=True, slots=True)
class Limits:
    budget_usd: float | None = None
    budget_period: str = "total"
    rpm: int | None = None
    tpm: int | None = None

    @property
    def any(self) -> bool:
        return self.budget_usd is not None or self.rpm is not None or self.tpm is not None

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Limits:
        """The limits of a stored key or project (its four columns)."""
        return cls(
            budget_usd=values.get("budget_usd"),
            budget_period=values.get("budget_period") or "total",
            rpm=values.get("rpm"),
            tpm=values.get("tpm"),
        )

    def to_json(self) -> dict[str, Any]:
        return {"budget_usd": self.budget_usd, "budget_period": self.budget_period, "rpm": self.rpm, "tpm": self.tpm}


NO_LIMITS = Limits()


def period_key(period: str, at: datetime) -> str:
    """The budget's current period: `total`, `d2026-11-23`, `m2026-11` (UTC)."""
    if period != "daily" and period != "monthly":
        return "total"
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    # Formatted by hand: strftime costs several microseconds, and this runs for every request with a budget.
    if period == "daily":
        return f"d{at.year:04d}-{at.month:02d}-{at.day:02d}"
    return f"m{at.year:04d}-{at.month:02d}"


def period_bounds(key: str) -> tuple[datetime | None, datetime | None]:
    """The start and end (UTC) of a period key; (None, None) for `total`."""
    if key.startswith("d"):
        start = datetime.strptime(key[1:], "%Y-%m-%d").replace(tzinfo=UTC)
        return start, datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
    if key.startswith("m"):
        start = datetime.strptime(key[1:], "%Y-%m").replace(tzinfo=UTC)
        following = (
            start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        )
        return start, following
    return None, None


def to_nano(usd: float) -> int:
    """Dollars as billionths, rounded up (a reservation never holds less than it may cost)."""
    return math.ceil(round(usd * NANO, 3))


@dataclass(frozen=True, slots=True)
class Allowance:
    """One scope's limits, as a request meets them: `scope` is `key:<id>` or `project:<id>`; `budget_key` names the
    state of its budget in the current period (`key:<id>:d2026-11-23`), None without a budget."""

    scope: str
    budget_key: str | None = None
    budget_nano: int | None = None
    rpm: int | None = None
    tpm: int | None = None

    @classmethod
    def of(cls, scope: str, limits: Limits, at: datetime) -> Allowance:
        budget = limits.budget_usd
        return cls(
            scope=scope,
            budget_key=f"{scope}:{period_key(limits.budget_period, at)}" if budget is not None else None,
            budget_nano=to_nano(budget) if budget is not None else None,
            rpm=limits.rpm,
            tpm=limits.tpm,
        )

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.scope, "budget_key": self.budget_key, "tpm": self.tpm}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Allowance:
        return cls(scope=raw["scope"], budget_key=raw.get("budget_key"), tpm=raw.get("tpm"))


@dataclass(frozen=True, slots=True)
class Hold:
    """What one request reserves: its worst-case cost and tokens, held under its request id until it ends (or
    `ttl` seconds pass: a request whose instance died releases its hold that way)."""

    id: str
    nano: int
    tokens: int
    ttl: float = 3600.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was not admitted: the scope and the limit (`budget`, `rpm`, `tpm`); `retry_after` seconds for a
    rate limit (to the next minute window); `unseeded`: the scope's budget state is not in the broker yet."""

    scope: str
    limit: str
    retry_after: float = 0.0
    spent_nano: int = 0
    held_nano: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    """A request's admitted hold and the allowances it was checked against, kept with the request (`to_json`) so
    whichever instance ends it can release it."""

    hold: Hold
    allowances: tuple[Allowance, ...]
    minute: int  # the rate window the tokens were counted in

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.hold.id,
            "nano": self.hold.nano,
            "tokens": self.hold.tokens,
            "minute": self.minute,
            "allowances": [allowance.to_json() for allowance in self.allowances],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Reservation:
        return cls(
            hold=Hold(id=raw["id"], nano=int(raw["nano"]), tokens=int(raw["tokens"])),
            allowances=tuple(Allowance.from_json(a) for a in raw.get("allowances") or ()),
            minute=int(raw.get("minute") or 0),
        )
