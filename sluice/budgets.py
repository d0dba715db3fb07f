"""Budgets and per-minute limits, enforced where every request is accepted and settled where every request ends.

`Budgets.reserve` runs in `Gateway.submit` (every route: chat completions, Messages, Responses, `/v1/ai*`,
embeddings), before anything is queued or dispatched: it works out the request's worst case (`sluice.spend.limits`)
and takes it from the API key's and the project's allowances in one broker step — a Lua script on Redis, the
authority shared by every instance; a dict in process on the embedded default. A budget's spend is seeded from the
store (its requests' recorded costs) the first time the broker is asked about it, and again whenever the broker lost
it. What the attempts really cost is added when the run ends (`Budgets.charge`: the worker, the pass-through), and
the hold is released when the request ends (`Budgets.releaser`, through `finish()`: answer, failure, cancel, callback,
timeout).

Fail closed: if the broker cannot be asked (Redis down), a request that has limits is refused with 503 and is not
run. A request of a key and project with no limits never asks the broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sluice.errors import BadRequest, PaymentRequired, ServiceUnavailable, Unprocessable
from sluice.quotas import MASTER_KEY_ID, RateLimited
from sluice.spend.limits import (
    DEFAULT_OUTPUT_CAP,
    NANO,
    NO_LIMITS,
    Allowance,
    Hold,
    Limits,
    Refusal,
    Reservation,
    period_bounds,
    to_nano,
)
from sluice.spend.prices import Prices
from sluice.spend.usage import counted_input_tokens, usage_from_meta

if TYPE_CHECKING:
    from sluice.broker.base import Broker
    from sluice.lifecycle.finish import Release
    from sluice.lifecycle.outcome import Outcome
    from sluice.observability.metrics import Metrics
    from sluice.store.spend import SpendStore
    from sluice.workflows.model import Catalog, Workflow

log = logging.getLogger("sluice.budgets")
PROJECT_TTL = 5.0  # seconds a project's limits are cached (a change through another instance shows this late)
HOLD_TTL = 3600.0  # a hold never settled (its instance died) is released after this long


class Budgets:
    def __init__(
        self,
        broker: Broker,
        store: SpendStore,
        prices: Prices,
        catalog: Callable[[], Catalog],
        metrics: Metrics | None = None,
    ) -> None:
        self.broker = broker
        self.metrics = metrics
        self.store = store
        self.prices = prices
        self.catalog = catalog
        self._projects: dict[str, tuple[float, Limits]] = {}
        # One store read per project at a time: when a cached entry expires under load, every request arriving
        # meanwhile waits for the same read (rather than each opening a database connection of its own).
        self._reading: dict[str, asyncio.Future[Limits]] = {}

    async def project_limits(self, project_id: str) -> Limits:
        cached = self._projects.get(project_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        reading = self._reading.get(project_id)
        if reading is None:
            reading = self._reading[project_id] = asyncio.ensure_future(self._read_project(project_id))
            reading.add_done_callback(lambda _: self._reading.pop(project_id, None))
        return await asyncio.shield(reading)  # a caller that goes away leaves the read to the others

    async def _read_project(self, project_id: str) -> Limits:
        row = await self.store.project_limits(project_id)
        limits = Limits.of(row) if row else NO_LIMITS
        self._projects[project_id] = (time.monotonic() + PROJECT_TTL, limits)
        return limits

    def forget_project(self, project_id: str) -> None:
        self._projects.pop(project_id, None)

    async def reserve(
        self,
        request_id: str,
        key_id: str,
        key_limits: Limits | None,
        project_id: str,
        workflow: Workflow,
        body: dict[str, Any],
    ) -> Reservation | None:
        """Admit the request against its key's and project's limits, holding its worst case; None when neither has
        any. Raises 402 (a budget), 429 + Retry-After (rpm, tpm), 400 (a request that can never fit its tpm), 422
        (a budget meets a model without a price) or 503 (the budget state cannot be read)."""
        if key_id == MASTER_KEY_ID:  # the operator's key, like SLUICE_RATE_LIMIT, is not limited
            return None
        project = await self.project_limits(project_id)
        if key_limits is None and not project.any:  # most keys: nothing to hold
            return None
        scopes = [(f"key:{key_id}", key_limits or NO_LIMITS), (f"project:{project_id}", project)]
        scopes = [(scope, limits) for scope, limits in scopes if limits.any]
        now = datetime.now(UTC)
        allowances = [Allowance.of(scope, limits, now) for scope, limits in scopes]
        budgeted = any(allowance.budget_key is not None for allowance in allowances)
        tokens, cost = self.worst_case(workflow, body, priced=budgeted)
        for allowance in allowances:
            if allowance.tpm is not None and tokens > allowance.tpm:
                raise BadRequest(
                    f"this request may use up to {tokens} tokens (its input and its max_tokens), more than the "
                    f"{allowance.tpm} tokens per minute of this {_name(allowance.scope)}; lower max_tokens",
                    code="over_token_limit",
                )
        hold = Hold(id=request_id, nano=to_nano(float(cost)), tokens=tokens, ttl=HOLD_TTL)
        for _ in range(len(allowances) + 1):
            try:
                found = await self.broker.reserve(hold, allowances)
                if isinstance(found, Reservation):
                    return found
                if found.limit != "unseeded":
                    raise refusal_error(found, allowances, hold)
                await self._seed(next(a for a in allowances if a.scope == found.scope))
            except (PaymentRequired, RateLimited):
                raise
            except Exception as exc:
                log.warning("the budget state could not be read: %s", exc)
                raise ServiceUnavailable(
                    f"the budget and rate-limit state cannot be read ({type(exc).__name__}); the request was not "
                    "run. Retry once the gateway's broker is back",
                    code="budget_unavailable",
                ) from exc
        raise ServiceUnavailable("the budget state could not be seeded; retry", code="budget_unavailable")

    def worst_case(self, workflow: Workflow, body: dict[str, Any], *, priced: bool) -> tuple[int, Decimal]:
        """The most tokens and dollars one attempt of the request can use: counted input plus the output cap, at the
        most expensive entry of the chain. `priced`: a budget applies, so every entry needs a known price."""
        input_tokens = counted_input_tokens(body)
        embeddings = "input" in body and "messages" not in body
        catalog = self.catalog()
        tokens, cost = 0, Decimal(0)
        for entry in workflow.chain:
            cap = 0 if embeddings else _output_cap(body, entry.params, catalog, entry.provider)
            tokens = max(tokens, input_tokens + cap)
            if not priced:
                continue
            worst = self.prices.worst_case(entry.provider, entry.model, input_tokens, cap)
            if worst is None:
                raise Unprocessable(
                    f"the price of {entry.provider}/{entry.model} is not known, and this key or project has a "
                    "budget; set its price in the provider's `prices` option",
                    code="price_unknown",
                )
            cost = max(cost, worst)
        return tokens, cost

    async def run_ended(self, workflow: str, reservation: dict[str, Any] | None, outcome: Outcome) -> None:
        """A run ended (once per run, by whoever ran it, whatever becomes of its end): count what its attempts cost
        (`/metrics`) and add it to the request's budgets. Never raises: the run happened; a failure is logged, and
        the store has the cost."""
        if self.metrics is not None:
            self.metrics.spent(workflow, outcome.meta.get("attempts") or [])
        if reservation:
            usage = usage_from_meta(outcome.meta.get("usage"))
            tokens = usage.input_tokens + usage.output_tokens
            await self._settle(Reservation.from_json(reservation), to_nano(outcome.cost_usd or 0.0), tokens, False)

    def releaser(self, reservation: dict[str, Any] | None) -> Release | None:
        """What `finish()` calls once the request's end is recorded: give back its hold (None: it holds nothing)."""
        if not reservation:
            return None
        found = Reservation.from_json(reservation)

        async def release() -> None:
            await self._settle(found, 0, found.hold.tokens, True)

        return release

    async def release(self, reservation: Reservation) -> None:
        """Give back the hold of a request that was not accepted after all (an idempotent repeat, a failed insert)."""
        await self._settle(reservation, 0, reservation.hold.tokens, True)

    async def _settle(self, reservation: Reservation, nano: int, tokens: int, release: bool) -> None:
        try:
            await self.broker.settle(reservation, nano, tokens, release=release)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("settling the budget of %s failed (its hold expires by itself)", reservation.hold.id)

    async def state(self, scope: str, limits: Limits) -> dict[str, Any]:
        """The budget of `scope` now: spent, held and remaining USD in the current period (from the broker, seeded
        from the store if needed)."""
        allowance = Allowance.of(scope, limits, datetime.now(UTC))
        if allowance.budget_key is None:
            spent = await self.store.spent_usd(scope, None, None)
            return {"spent_usd": spent, "held_usd": 0.0, "remaining_usd": None, "period": None}
        found = await self.broker.budget_state(allowance.budget_key)
        if found is None:
            await self._seed(allowance)
            found = await self.broker.budget_state(allowance.budget_key) or (0, 0)
        spent, held = found
        remaining = max((allowance.budget_nano or 0) - spent - held, 0) / NANO
        return {
            "spent_usd": spent / NANO,
            "held_usd": held / NANO,
            "remaining_usd": remaining,
            "period": allowance.budget_key.rsplit(":", 1)[1],
        }

    async def _seed(self, allowance: Allowance) -> None:
        assert allowance.budget_key is not None
        period = allowance.budget_key.rsplit(":", 1)[1]
        start, end = period_bounds(period)
        spent = await self.store.spent_usd(allowance.scope, start, end)
        ttl = (end - datetime.now(UTC)).total_seconds() + 86400 if end is not None else 0
        await self.broker.seed_budget(allowance.budget_key, to_nano(spent), ttl)


def refusal_error(refusal: Refusal, allowances: list[Allowance], hold: Hold) -> PaymentRequired | RateLimited:
    name = _name(refusal.scope)
    if refusal.limit == "budget":
        allowance = next(a for a in allowances if a.scope == refusal.scope)
        period = (allowance.budget_key or "").rsplit(":", 1)[-1]
        kind = {"d": "daily ", "m": "monthly "}.get(period[:1], "")
        return PaymentRequired(
            f"this {name}'s {kind}budget of ${(allowance.budget_nano or 0) / NANO:.2f} is spent: "
            f"${refusal.spent_nano / NANO:.6f} spent and ${refusal.held_nano / NANO:.6f} held by requests under way; "
            f"this request may cost up to ${hold.nano / NANO:.6f}",
            code="budget_exceeded",
        )
    what = "requests" if refusal.limit == "rpm" else "tokens"
    return RateLimited(
        f"this {name} is over its {what} per minute ({refusal.limit}); retry after the window ends",
        retry_after=refusal.retry_after,
        code=f"{what}_per_minute_exceeded",
    )


def _name(scope: str) -> str:
    return "API key" if scope.startswith("key:") else "project"


def _output_cap(body: dict[str, Any], params: dict[str, Any], catalog: Catalog, provider: str) -> int:
    """The most output one attempt may produce: the request's max_tokens, else the chain entry's, else the
    provider's own cap (Anthropic's `max_tokens` option), else `DEFAULT_OUTPUT_CAP`."""
    for value in (body.get("max_tokens"), params.get("max_tokens")):
        if isinstance(value, int) and value > 0:
            return value
    config = catalog.providers.get(provider)
    own = getattr(config.settings, "max_tokens", None) if config is not None else None
    return own if isinstance(own, int) and own > 0 else DEFAULT_OUTPUT_CAP
