"""Admin API for webhooks: auth, delivery listing and replay, secret rotation with an overlap window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import StartGateway, chat_body
from tests.delivery.helpers import FAST, admin_client, eventually, workflow_file
from tests.delivery.receiver import running_receiver

PATHS = ["/v1/admin/webhooks/deliveries", "/v1/admin/webhooks/secrets", "/v1/admin/webhooks/settings"]


async def test_admin_key_required(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    async with gw.client() as client:  # a plain project key
        for path in PATHS:
            refused = await client.get(path)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_required"
        assert (await client.post("/v1/admin/webhooks/secrets/rotate")).status_code == 403
        anonymous = await client.get(PATHS[0], headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_rotation_overlap_and_secrets_never_listed(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    async with admin_client(gw) as admin:
        first = await admin.post("/v1/admin/webhooks/secrets/rotate")
        second = await admin.post("/v1/admin/webhooks/secrets/rotate", json={"overlap_seconds": 60})
        too_long = await admin.post("/v1/admin/webhooks/secrets/rotate", json={"overlap_seconds": -1})
        listed = (await admin.get("/v1/admin/webhooks/secrets")).json()["secrets"]
    assert first.status_code == 201 and second.status_code == 201 and too_long.status_code == 422
    assert first.json()["secret"].startswith("whsec_")
    assert [s["id"] for s in listed] == [second.json()["id"], first.json()["id"]]
    assert listed[0]["expires_at"] is None and listed[1]["expires_at"] == second.json()["previous_valid_until"]
    assert "whsec_" not in str(listed)
    active = await gw.gateway.delivery.webhooks.active_secrets(gw.gateway.default_project_id)
    assert active == [second.json()["secret"], first.json()["secret"]]  # both sign during the overlap


async def test_list_filter_show_and_replay(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(config_path=workflow_file(tmp_path), extra=FAST)
    async with running_receiver() as receiver:
        async with gw.client() as client:
            ids = []
            for text in ("one", "two"):
                body = chat_body(text, webhook_url=receiver.url, events=["request.completed"])
                ids.append((await client.post("/v1/ai/async", json=body)).json()["channel_id"])
        await receiver.next()
        await receiver.next()
        async with admin_client(gw) as admin:

            async def both_delivered() -> list[dict[str, Any]] | None:
                found = (await admin.get(PATHS[0], params={"status": "delivered"})).json()["deliveries"]
                return found if len(found) == 2 else None

            delivered = await eventually(both_delivered)
            assert {d["request_id"] for d in delivered} == set(ids)
            one = (await admin.get(PATHS[0], params={"request_id": ids[0], "limit": 1})).json()["deliveries"]
            assert [d["request_id"] for d in one] == [ids[0]]
            assert (await admin.get(PATHS[0], params={"status": "bogus"})).status_code == 422
            shown = (await admin.get(f"{PATHS[0]}/{one[0]['id']}")).json()
            assert shown["payload"]["type"] == "task.completed" and len(shown["attempt_log"]) == 1
            replay = await admin.post(f"{PATHS[0]}/{one[0]['id']}/replay")
            assert replay.status_code == 202 and replay.json()["status"] == "pending"
            again = await receiver.next()
            assert again.headers["webhook-id"] == one[0]["id"]  # the same message id, so receivers dedupe

            async def twice() -> dict[str, Any] | None:
                found = (await admin.get(f"{PATHS[0]}/{one[0]['id']}")).json()
                return found if found["status"] == "delivered" and found["attempts"] == 2 else None

            assert (await eventually(twice))["attempt_log"][1]["status_code"] == 200
