import asyncio

from sluice.patience import Patience


async def test_a_run_that_ends_in_time_is_seen_ending() -> None:
    patience = Patience(5.0)
    run: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(run.set_result, None)
    assert await asyncio.wait_for(patience.ended_within(run), 1) is True


async def test_a_run_that_outlasts_the_patience_is_given_up_on_and_the_ticker_stops() -> None:
    patience = Patience(0.05)
    runs = [asyncio.get_running_loop().create_future() for _ in range(3)]
    waiting = asyncio.gather(*(patience.ended_within(run) for run in runs))
    await asyncio.sleep(0)  # the waits have begun: one ticker for them all
    ticker = patience._ticker
    assert ticker is not None
    assert await asyncio.wait_for(waiting, 2) == [False, False, False]
    assert not any(run.done() for run in runs)  # given up on, not cancelled
    assert not patience._waiting
    await asyncio.wait_for(ticker, 1)  # nobody waits any more: it ends by itself
    assert patience._ticker is None


async def test_a_waiter_cancelled_leaves_nothing_behind() -> None:
    patience = Patience(5.0)
    run: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(patience.ended_within(run))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert not patience._waiting
    await patience.aclose()
    assert patience._ticker is None
