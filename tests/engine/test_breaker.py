"""The circuit breaker: the pure state machine with a fake clock, then a failing provider skipped and probed
through the real gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sluice.engine.breaker import BreakerPolicy, BreakerState, admit, record
from sluice.testing import FakeProvider, Script
from tests.conftest import StartGateway, chat_body, write_config

POLICY = BreakerPolicy(failures=3, cooldown=30, probe_timeout=10)


def fail(state: BreakerState, now: float) -> BreakerState:
    return record(state, False, now, POLICY)


def test_opens_after_consecutive_failures_and_skips_during_cooldown() -> None:
    state = fail(fail(BreakerState(), 0), 1)
    assert admit(state, 2, POLICY)[0]  # two failures: still closed
    state = record(state, True, 2, POLICY)
    state = fail(fail(fail(state, 3), 4), 5)  # a success in between reset the count
    assert state.open_until == 35
    assert not admit(state, 6, POLICY)[0]
    assert not admit(state, 34.9, POLICY)[0]


def test_half_open_admits_one_probe_then_closes_or_reopens() -> None:
    state = BreakerState(failures=3, open_until=35)
    allowed, probing = admit(state, 35, POLICY)
    assert allowed
    assert not admit(probing, 36, POLICY)[0]  # a second request waits for the probe
    assert admit(probing, 45, POLICY)[0]  # … unless the probe never reported back
    assert record(probing, True, 37, POLICY) == BreakerState()
    reopened = record(probing, False, 37, POLICY)
    assert reopened.open_until == 67 and not admit(reopened, 40, POLICY)[0]


def test_the_policy_comes_from_the_providers_validated_config() -> None:
    from sluice.providers.options import BreakerPolicy as Validated
    from sluice.providers.pool import ProviderPool
    from sluice.workflows.loader import build_catalog

    assert BreakerPolicy is Validated  # re-exported: `breaker:` is validated with the provider's options
    record = {"type": "simulated", "breaker": {"failures": 2, "cooldown": "500ms"}}
    pool = ProviderPool(build_catalog({"providers": {"p": record, "q": {"type": "simulated"}}, "workflows": {}}, {}))
    assert pool.breaker_policy("p") == BreakerPolicy(failures=2, cooldown=0.5)
    assert pool.breaker_policy("q") == BreakerPolicy()


async def test_failing_provider_is_skipped_during_cooldown_and_probed_after(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    cooldown = 1.2  # long enough that the skipped request surely starts inside it, even on a loaded machine
    async with FakeProvider("openai", text="flaky") as flaky, FakeProvider("ollama", text="steady") as steady:
        config = write_config(
            tmp_path,
            f"""
providers:
  flaky: {{type: openai, api_key: k, base_url: "{flaky.base_url}", breaker: {{failures: 2, cooldown: {cooldown}}}}}
  steady: {{type: ollama, base_url: "{steady.base_url}"}}
workflows:
  w:
    chain: [{{provider: flaky, model: m, retries: 0}}, {{provider: steady, model: n}}]
""",
        )
        gw = await start_gateway(config_path=config)
        flaky.script(Script(status=500), Script(status=500))

        async def run() -> dict:
            async with gw.client() as client:
                body = (await client.post("/v1/ai", json=chat_body(workflow="w"))).json()
                record = (await client.get(f"/v1/requests/{body['request_id']}")).json()
            return {
                "provider": body["meta"]["provider"],
                "attempts": [(a["provider"], a["status"], a["error_code"]) for a in record["attempts"]],
            }

        assert (await run())["provider"] == "steady"
        assert (await run())["provider"] == "steady"  # the second failure opens the breaker
        opened = asyncio.get_running_loop().time()
        assert len(flaky.requests) == 2
        skipped = await run()
        assert skipped["attempts"][0] == ("flaky", "skipped", "circuit_open")
        assert skipped["provider"] == "steady" and len(flaky.requests) == 2  # not even asked

        await asyncio.sleep(max(cooldown - (asyncio.get_running_loop().time() - opened), 0) + 0.05)
        probed = await run()  # the cool-down passed: one probe, which succeeds and closes the breaker
        assert probed == {"provider": "flaky", "attempts": [("flaky", "succeeded", None)]}
        assert len(flaky.requests) == 3
        assert (await run())["provider"] == "flaky"
