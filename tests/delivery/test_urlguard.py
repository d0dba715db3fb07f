"""The SSRF guard: unit rules, and the 422 at submit unless development mode or the project allows it."""

from __future__ import annotations

import ipaddress

import pytest

from sluice.delivery.urlguard import UrlRefused, blocked_reason, check_webhook_url
from tests.conftest import StartGateway, chat_body
from tests.delivery.helpers import admin_client

BLOCKED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "::1",
    "fe80::1",
    "fd00::1",
    "::ffff:127.0.0.1",
    "fd00:ec2::254",
    "224.0.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2001::1",  # Teredo: not globally routable
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4000/webhook",
        "http://localhost/webhook",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/",
        "ftp://example.com/",
        "not a url",
        "http://user:pw@example.com/",
    ],
)
async def test_refused_urls(url: str) -> None:
    with pytest.raises(UrlRefused) as caught:
        await check_webhook_url(url, allow_private=False)
    assert caught.value.status_code == 422 and caught.value.code == "webhook_url_not_allowed"


async def test_private_allowed_when_the_project_allows_it() -> None:
    await check_webhook_url("http://127.0.0.1:4000/webhook", allow_private=True)
    with pytest.raises(UrlRefused):
        await check_webhook_url("ftp://127.0.0.1/", allow_private=True)  # still must be http(s)


async def test_production_refuses_loopback_webhooks_until_the_project_allows_them(start_gateway: StartGateway) -> None:
    gw = await start_gateway(env="production")
    body = chat_body(webhook_url="http://127.0.0.1:9/webhook", events=["webhook_received"])
    async with gw.client() as client:
        refused = await client.post("/v1/ai/async", json=body)
        metadata = await client.post("/v1/ai/async", json={**body, "webhook_url": "http://169.254.169.254/x"})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "webhook_url_not_allowed" and "loopback" in error["message"]
    assert metadata.status_code == 422 and "metadata" in metadata.json()["error"]["message"]
    async with admin_client(gw) as admin:
        assert (await admin.put("/v1/admin/webhooks/settings", json={"allow_private_urls": True})).status_code == 200
        assert (await admin.get("/v1/admin/webhooks/settings")).json()["allow_private_urls"] is True
        bad = await admin.put("/v1/admin/webhooks/settings", json={"allow_private_urls": True, "x": 1})
    assert bad.status_code == 422
    async with gw.client() as client:
        assert (await client.post("/v1/ai/async", json=body)).status_code == 202
        # the settings are admin-only
        assert (await client.get("/v1/admin/webhooks/settings")).status_code == 403


async def test_development_allows_loopback(start_gateway: StartGateway) -> None:
    gw = await start_gateway(env="development")
    async with gw.client() as client:
        accepted = await client.post("/v1/ai/async", json=chat_body(webhook_url="http://127.0.0.1:9/webhook"))
    assert accepted.status_code == 202
