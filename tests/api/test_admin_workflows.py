"""Admin API: stored workflows are validated by the workflow loader (field-level messages, nothing half-saved),
merged into the catalog at once, editable, deletable; config-file workflows are read-only."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import MASTER_KEY, RunningGateway, StartGateway, chat_body

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
DEFINITION = {
    "name": "support_triage",
    "chain": [{"provider": "simulated", "model": "sim-1"}],
    "system": "You triage support tickets.",
    "schema": {"reply": "string", "urgency": "low | medium | high"},
    "callback": {"timeout": "60s", "on_timeout": "fail"},
    "cancel_when_unwatched_for": "2m",
}


async def wait_done(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            body = (await client.get(f"/v1/requests/{request_id}")).json()
            if body["status"] in ("completed", "failed"):
                return body
            await asyncio.sleep(0.05)


async def test_create_use_edit_delete(gw: RunningGateway) -> None:
    async with gw.client() as client:
        created = await client.post("/v1/admin/workflows", json=DEFINITION, headers=ADMIN)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["source"] == "stored" and body["editable"]
        assert body["json_schema"]["properties"]["urgency"]["enum"] == ["low", "medium", "high"]
        assert body["definition"]["schema"] == DEFINITION["schema"]  # the shorthand is kept for editing
        assert body["cancel_when_unwatched_for"] == 120.0

        # Requests can use it immediately, and get output matching its schema.
        accepted = await client.post("/v1/ai/async", json=chat_body("my order is late", workflow="support_triage"))
        assert accepted.status_code == 202, accepted.text
        done = await wait_done(client, accepted.json()["request_id"])
        assert done["status"] == "completed" and set(done["data"]) == {"reply", "urgency"}

        edited = await client.put(
            "/v1/admin/workflows/support_triage",
            headers=ADMIN,
            json={**{k: v for k, v in DEFINITION.items() if k != "name"}, "schema": {"answer": "string"}},
        )
        assert edited.status_code == 200, edited.text
        accepted = await client.post("/v1/ai/async", json=chat_body("again", workflow="support_triage"))
        done = await wait_done(client, accepted.json()["request_id"])
        assert set(done["data"]) == {"answer"}

        listed = (await client.get("/v1/admin/workflows", headers=ADMIN)).json()["workflows"]
        by_name = {w["name"]: w for w in listed}
        assert by_name["demo"]["source"] == "builtin" and not by_name["demo"]["editable"]
        assert by_name["support_triage"]["definition"]["schema"] == {"answer": "string"}

        assert (await client.post("/v1/admin/workflows", json=DEFINITION, headers=ADMIN)).status_code == 409
        assert (await client.delete("/v1/admin/workflows/support_triage", headers=ADMIN)).status_code == 204
        gone = await client.post("/v1/ai/async", json=chat_body(workflow="support_triage"))
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "workflow_not_found"


async def test_invalid_definitions_are_refused_by_field_and_nothing_is_saved(gw: RunningGateway) -> None:
    cases = [
        ({"chain": [{"provider": "nope", "model": "m"}]}, "chain[0].provider", "unknown provider 'nope'"),
        ({"chain": []}, "chain", "at least one"),
        ({"schema": {"mood": "array<strin>"}}, "schema.mood[]", "strin"),
        ({"callback": {"on_timeout": "shrug"}}, "callback.on_timeout", "'deliver' or 'fail'"),
        ({"cancel_when_unwatched_for": "0s"}, "cancel_when_unwatched_for", "at least 1s"),
        ({"colour": "blue"}, None, "unknown keys ['colour']"),
    ]
    async with gw.client() as client:
        for change, field, words in cases:
            response = await client.post("/v1/admin/workflows", headers=ADMIN, json={**DEFINITION, **change})
            assert response.status_code == 422, (change, response.text)
            error = response.json()["error"]
            assert error["code"] == "invalid_workflow" and words in error["message"], (change, error)
            if field:
                assert error["field"] == field, (change, error)
        bad_name = await client.post("/v1/admin/workflows", headers=ADMIN, json={**DEFINITION, "name": "a/b"})
        assert bad_name.status_code == 422 and bad_name.json()["error"]["field"] == "name"
        names = [w["name"] for w in (await client.get("/v1/admin/workflows", headers=ADMIN)).json()["workflows"]]
        assert names == ["demo"]
        assert await gw.gateway.admin_store.list_workflows() == []
        # The built-in workflow cannot be overwritten or deleted here.
        assert (
            await client.post("/v1/admin/workflows", headers=ADMIN, json={**DEFINITION, "name": "demo"})
        ).status_code == 409
        assert (await client.delete("/v1/admin/workflows/demo", headers=ADMIN)).status_code == 409


async def test_compile_schema_shows_the_json_schema_or_the_error(gw: RunningGateway) -> None:
    async with gw.client() as client:
        ok = await client.post(
            "/v1/admin/schemas/compile", headers=ADMIN, json={"text": "reply: string\ntopics: array<string>\n"}
        )
        assert ok.status_code == 200, ok.text
        compiled = ok.json()["json_schema"]
        assert compiled["required"] == ["reply", "topics"] and compiled["additionalProperties"] is False
        assert compiled["properties"]["topics"] == {"type": "array", "items": {"type": "string"}}

        bad = await client.post(
            "/v1/admin/schemas/compile", headers=ADMIN, json={"text": "reply: string\nitems: 'array<{task: strng}>'\n"}
        )
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert error["field"].startswith("schema.items") and error["column"] is not None, error
        yaml_error = await client.post("/v1/admin/schemas/compile", headers=ADMIN, json={"text": "a: [unclosed"})
        assert yaml_error.status_code == 422 and "line" in yaml_error.json()["error"]["message"]


async def test_another_instance_picks_up_a_stored_workflow(start_gateway: StartGateway) -> None:
    first = await start_gateway()
    second = await start_gateway()  # the same store (the test's data directory), its own broker
    async with first.client() as client:
        assert (await client.post("/v1/admin/workflows", json=DEFINITION, headers=ADMIN)).status_code == 201
    async with asyncio.timeout(10):
        while second.gateway.catalog.workflow("support_triage") is None:
            await asyncio.sleep(0.1)
