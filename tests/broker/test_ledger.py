"""The budget ledger of both brokers (in process, and Redis's Lua scripts), held to the same rules: a hold is taken
only if it fits every allowance, in one step however many callers race; settling adds the real figure and gives the
hold back; an unseeded budget says so; a hold never settled expires."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from sluice.broker.base import Broker
from sluice.broker.memory import MemoryBroker
from sluice.spend.limits import Allowance, Hold, Refusal, Reservation
from tests.backends import DEFAULT_REDIS_URL
from tests.conftest import within_one_minute_window


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    if request.param == "memory":
        yield MemoryBroker()
        return
    redis = pytest.importorskip("redis")
    from sluice.broker.redis import RedisBroker

    found = RedisBroker(DEFAULT_REDIS_URL, key_prefix=f"sluice-test-{uuid.uuid4().hex[:12]}:")
    try:
        await found.start()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {DEFAULT_REDIS_URL}")
    yield found
    await found.aclose()
    cleaner = RedisBroker(DEFAULT_REDIS_URL, key_prefix=found.keys.prefix)
    await cleaner.delete_all()
    await cleaner.redis.aclose()


def budget(nano: int, **limits: int) -> Allowance:
    return Allowance("key:k", budget_key="key:k:total", budget_nano=nano, **limits)


async def test_an_unseeded_budget_asks_for_its_state_then_admits(broker: Broker) -> None:
    refused = await broker.reserve(Hold("r1", 10, 5), [budget(100)])
    assert isinstance(refused, Refusal) and refused.limit == "unseeded"
    await broker.seed_budget("key:k:total", 30, 0)
    await broker.seed_budget("key:k:total", 999, 0)  # another instance seeded first: the first value stands
    assert isinstance(await broker.reserve(Hold("r1", 10, 5), [budget(100)]), Reservation)
    assert await broker.budget_state("key:k:total") == (30, 10)


async def test_racing_reservations_never_overrun_the_budget(broker: Broker) -> None:
    await broker.seed_budget("key:k:total", 0, 0)
    results = await asyncio.gather(*(broker.reserve(Hold(f"r{i}", 7, 1), [budget(100)]) for i in range(60)))
    admitted = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, Refusal)]
    assert len(admitted) == 14 and all(r.limit == "budget" for r in refused)  # 14 holds of 7: 98 of 100
    assert await broker.budget_state("key:k:total") == (0, 98)
    # Each settles at its real figure and gives its hold back.
    await asyncio.gather(*(broker.settle(r, 3, 1, release=True) for r in admitted))
    assert await broker.budget_state("key:k:total") == (42, 0)
    # A late charge of a run whose hold was already given back (it was cancelled) still counts.
    await broker.settle(admitted[0], 5, 1, release=False)
    assert await broker.budget_state("key:k:total") == (47, 0)


async def test_every_scope_must_fit_and_none_is_taken_from_when_one_refuses(broker: Broker) -> None:
    project = Allowance("project:p", budget_key="project:p:total", budget_nano=10)
    await broker.seed_budget("key:k:total", 0, 0)
    await broker.seed_budget("project:p:total", 0, 0)
    refused = await broker.reserve(Hold("big", 20, 1), [budget(100), project])
    assert isinstance(refused, Refusal) and (refused.scope, refused.limit) == ("project:p", "budget")
    assert await broker.budget_state("key:k:total") == (0, 0)  # the key's budget was not touched either


async def test_requests_and_tokens_per_minute(broker: Broker) -> None:
    allowance = Allowance("key:r", rpm=2, tpm=100)
    await within_one_minute_window()
    first = await broker.reserve(Hold("a", 0, 60), [allowance])
    assert isinstance(first, Reservation)
    over_tokens = await broker.reserve(Hold("b", 0, 60), [allowance])
    assert isinstance(over_tokens, Refusal) and over_tokens.limit == "tpm" and 0 < over_tokens.retry_after <= 60
    await broker.settle(first, 0, 10, release=True)  # it used 10 of the 60 it held: 50 come back this minute
    second = await broker.reserve(Hold("b", 0, 60), [allowance])
    assert isinstance(second, Reservation)
    third = await broker.reserve(Hold("c", 0, 1), [allowance])
    assert isinstance(third, Refusal) and third.limit == "rpm"


async def test_a_hold_never_settled_expires(broker: Broker) -> None:
    await broker.seed_budget("key:k:total", 0, 0)
    assert isinstance(await broker.reserve(Hold("dead", 90, 1, ttl=0.2), [budget(100)]), Reservation)
    assert isinstance(await broker.reserve(Hold("next", 90, 1), [budget(100)]), Refusal)
    await asyncio.sleep(0.3)
    assert isinstance(await broker.reserve(Hold("next", 90, 1), [budget(100)]), Reservation)
