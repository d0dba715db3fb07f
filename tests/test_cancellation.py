"""`POST /v1/requests/{id}/cancel` on one gateway (the two-instance case is tests/e2e/test_cancel_scale_out.py):
the provider call is closed, the channel ends with one `error` `cancelled`, the partial output is kept, the webhook
hears `task.cancelled`; a queued request never runs, a late callback is refused."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx

from sluice.testing import Script
from tests.cancelling import SLOW, Slow, follow, one_terminal, slow_gateway
from tests.conftest import StartGateway
from tests.delivery.helpers import eventually
from tests.delivery.receiver import json_of, running_receiver


async def test_cancel_closes_the_provider_call_and_ends_the_stream_with_what_it_showed(slow: Slow) -> None:
    slow.fake.script(SLOW)
    async with running_receiver() as receiver:
        accepted = await slow.submit(webhook_url=receiver.url, metadata={"order": 7})
        async with follow(accepted) as browser:
            await browser.until(3)
            asked = time.monotonic()
            answer = await slow.cancel(accepted["request_id"])
            hangup = await slow.fake.wait_hangup(within=1.0)  # the upstream connection was closed…
            assert hangup.at - asked < 1.0  # …within a second of the cancel
            events = await browser.to_the_end()
        terminal = one_terminal(events)
        assert terminal["type"] == "error" and terminal["code"] == "cancelled"
        cancelled = answer.json()
        assert answer.status_code == 200 and cancelled["status"] == "cancelled"
        assert cancelled["error"]["code"] == "cancelled" and cancelled["meta"]["cancel_reason"] == "api"
        assert cancelled["data"] == {"content": browser.text()}  # exactly what the browser was shown
        assert [a["status"] for a in cancelled["attempts"]] == ["cancelled"]
        webhook = json_of(await receiver.next())
    assert webhook["type"] == "task.cancelled" and webhook["event"] == "request.cancelled"
    assert webhook["status"] == "cancelled" and webhook["data"] == cancelled["data"]
    assert webhook["metadata"] == {"order": 7}
    assert len(slow.fake.requests) == 1  # no retry, no failover: a cancelled run is over
    again = await slow.cancel(accepted["request_id"])
    assert again.status_code == 200 and again.json()["status"] == "cancelled"  # as it is


async def test_a_request_cancelled_while_queued_never_runs(start_gateway: StartGateway, tmp_path: Path) -> None:
    async with slow_gateway(start_gateway, tmp_path, worker_concurrency=1) as one:
        fake = one.fake
        fake.script(SLOW)
        running = await one.submit()
        queued = await one.submit()  # waits behind the first: one worker
        async with follow(running) as browser:
            await browser.until(1)
        answer = await one.cancel(queued["request_id"])
        assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
        assert answer.json()["data"] is None and answer.json()["attempts"] == []
        await one.cancel(running["request_id"])
        later = await one.submit()  # behind the cancelled job in the queue: once it ran, that job was passed over
        async with follow(later) as browser:
            assert one_terminal(await browser.to_the_end())["type"] == "response"
        async with follow(queued) as browser:
            events = await browser.to_the_end()
    assert [e["type"] for e in events] == ["status", "error"] and events[1]["code"] == "cancelled"
    assert len(fake.requests) == 2  # the first and the last: the cancelled one never reached the provider


async def test_a_request_cancelled_while_awaiting_its_callback_refuses_the_late_callback(slow: Slow) -> None:
    async with running_receiver() as receiver:
        accepted = await slow.submit("slow_callback", webhook_url=receiver.url, events=["webhook_received"])
        generated = json_of(await receiver.next())
        assert generated["type"] == "task.ai_generated"
        answer = await slow.cancel(accepted["request_id"])
        assert answer.json()["status"] == "cancelled"
        assert answer.json()["data"] == {"content": slow.fake.text}  # the whole answer had streamed
        async with httpx.AsyncClient(timeout=10) as client:
            late = await client.post(generated["callback_url"], json={"enriched": True})
        assert late.status_code == 409 and late.json()["error"]["code"] == "request_cancelled"
        assert json_of(await receiver.next())["type"] == "task.cancelled"  # the backend is told
        async with follow(accepted) as browser:
            terminal = one_terminal(await browser.to_the_end())
    assert terminal["type"] == "error" and terminal["code"] == "cancelled"
    async with slow.client() as client:
        assert (await client.get(f"/v1/requests/{accepted['request_id']}")).json()["status"] == "cancelled"


async def test_finished_unknown_and_other_projects_requests(slow: Slow) -> None:
    accepted = await slow.submit()
    async with follow(accepted) as browser:
        assert one_terminal(await browser.to_the_end())["type"] == "response"
    answer = await slow.cancel(accepted["request_id"])
    assert answer.status_code == 200 and answer.json()["status"] == "completed"  # a finished request, as it is
    assert (await slow.cancel("req_unknown")).status_code == 404
    gateway = slow.gw.gateway
    other = await gateway.store.ensure_project("other")
    key, _ = await gateway.store.create_api_key(other, "other")
    async with httpx.AsyncClient(base_url=slow.gw.url, headers={"Authorization": f"Bearer {key}"}) as client:
        refused = await client.post(f"/v1/requests/{accepted['request_id']}/cancel")
        nobody = await client.post(f"/v1/requests/{accepted['request_id']}/cancel", headers={"Authorization": ""})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "request_not_found"
    assert nobody.status_code == 401


async def test_the_cancel_url_needs_no_key_and_cancels_nothing_else(slow: Slow) -> None:
    slow.fake.script(SLOW, SLOW)
    first, second = await slow.submit(), await slow.submit()
    async with httpx.AsyncClient(timeout=10) as browser:  # a page: no API key
        forged = await browser.post(first["cancel_url"].replace(first["request_id"], second["request_id"]))
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_cancel_token"
        answer = await browser.post(first["cancel_url"], headers={"Origin": "https://app.example"})
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert answer.headers["access-control-allow-origin"] == "*"
    assert (await slow.cancel(second["request_id"])).json()["status"] == "cancelled"
    await slow.fake.wait_hangup(2, within=2.0)


async def test_a_running_chat_completion_is_cancelled_by_its_request_id(slow: Slow) -> None:
    slow.fake.script(SLOW)
    body = {"model": "slow", "messages": [{"role": "user", "content": "Go on."}], "stream": True}
    async with slow.client() as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        request_id = response.headers["x-request-id"]
        lines = response.aiter_lines()
        async with asyncio.timeout(5):
            while "word1" not in await anext(lines):
                pass
        answer = await slow.cancel(request_id)  # e.g. a "stop" button: the page's backend asks
        await slow.fake.wait_hangup(within=1.0)
        rest = [line async for line in lines if line.startswith("data: ")]
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert answer.json()["data"]["content"].startswith("word0 word1")
    assert json.loads(rest[-1][6:])["error"]["code"] == "cancelled"  # the stream's end, in OpenAI's shape
    async with slow.client() as client:
        assert (await client.get(f"/v1/requests/{request_id}")).json()["status"] == "cancelled"


async def test_a_pass_through_of_another_project_is_not_cancelled(slow: Slow) -> None:
    slow.fake.script(Script(chunk_delay=0.05, chunks=10))
    gateway = slow.gw.gateway
    key, _ = await gateway.store.create_api_key(await gateway.store.ensure_project("other"), "other")
    body = {"model": "slow", "messages": [{"role": "user", "content": "Mine."}], "stream": True}
    async with slow.client() as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        request_id = response.headers["x-request-id"]
        async with httpx.AsyncClient(base_url=slow.gw.url, headers={"Authorization": f"Bearer {key}"}) as other:
            refused = await other.post(f"/v1/requests/{request_id}/cancel")
        tail = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert refused.status_code == 404 and tail[-1] == "data: [DONE]" and slow.fake.hangups == []
    await eventually(lambda: gateway.store.get_request(request_id))  # written behind, then found: completed
    assert (await gateway.store.get_request(request_id)).status == "completed"  # type: ignore[union-attr]
