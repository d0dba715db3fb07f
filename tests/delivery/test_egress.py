"""The SSRF guard at connect time: the address a webhook connects to is the address the guard checked.

The network is played in the test's event loop (where the gateway runs): its resolver answers for one host name,
and connections to one public address are routed to a receiver on loopback, which stands for the public server.
Everything else — the gateway, httpx, the receivers, TCP — is real.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpcore
import pytest

from sluice.delivery.egress import GuardedBackend, webhook_client
from sluice.delivery.urlguard import IPAddress, UrlRefused
from tests.conftest import StartGateway, chat_body, paced_config
from tests.delivery.helpers import FAST, admin_client, eventually
from tests.delivery.receiver import running_receiver

REBINDING_HOST = "rebind.test"
PUBLIC = "203.0.114.7"  # a public address (not TEST-NET-3's 203.0.113.0/24, which the guard refuses)


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


class Network:
    """The event loop's view of the network: `REBINDING_HOST` resolves public, then loopback, then public… (an
    attacker's DNS with TTL 0), and `PUBLIC:<port>` is routed to `public_port` on loopback."""

    def __init__(self, loop: asyncio.AbstractEventLoop, public_port: int) -> None:
        self.loop = loop
        self.public_port = public_port
        self.answers = itertools.cycle([PUBLIC, "127.0.0.1"])
        self.lookups: list[str] = []  # what each lookup of REBINDING_HOST answered, in order
        self._getaddrinfo = loop.getaddrinfo
        self._create_connection = loop.create_connection

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if (host.decode() if isinstance(host, bytes) else host) != REBINDING_HOST:  # anyio passes IDNA bytes
            return await self._getaddrinfo(host, port, *args, **kwargs)
        answer = next(self.answers)
        self.lookups.append(answer)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answer, int(port)))]

    async def create_connection(self, factory: Any, host: Any = None, port: Any = None, **kwargs: Any) -> Any:
        if host == PUBLIC:
            host, port = "127.0.0.1", self.public_port
        return await self._create_connection(factory, host, port, **kwargs)


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def install(public_port: int) -> Network:
        net = Network(asyncio.get_running_loop(), public_port)
        monkeypatch.setattr(net.loop, "getaddrinfo", net.getaddrinfo)
        monkeypatch.setattr(net.loop, "create_connection", net.create_connection)
        return net

    yield install


async def test_a_rebinding_host_never_reaches_the_loopback_address(
    start_gateway: StartGateway, tmp_path: Path, network: Any
) -> None:
    # Production: webhooks may go to public addresses only.
    gw = await start_gateway(env="production", config_path=paced_config(tmp_path, 0), extra=FAST)
    async with running_receiver() as internal, running_receiver() as public:
        net = network(port_of(public.url))
        port = port_of(internal.url)
        webhook_url = f"http://{REBINDING_HOST}:{port}/webhook"  # the port of the service inside
        async with gw.client() as client:
            accepted = await client.post("/v1/ai/async", json=chat_body(webhook_url=webhook_url))
        assert accepted.status_code == 202, accepted.text  # checked at submit: the first answer was public
        request_id = accepted.json()["channel_id"]
        async with admin_client(gw) as admin:

            async def settled() -> dict[str, Any] | None:
                listed = (await admin.get("/v1/admin/webhooks/deliveries", params={"request_id": request_id})).json()
                found = listed["deliveries"]
                if not found or found[0]["status"] == "pending":
                    return None
                return (await admin.get(f"/v1/admin/webhooks/deliveries/{found[0]['id']}")).json()

            delivery = await eventually(settled, wait=10)
    assert internal.received == [], "a webhook reached the loopback address the host was rebound to"
    assert len(public.received) == 1 and delivery["status"] == "delivered"
    refused, sent = delivery["attempt_log"]
    assert refused["status_code"] is None and "resolves to 127.0.0.1, a loopback address" in refused["error"]
    assert sent["status_code"] == 200
    # One lookup at submit, then exactly one per attempt: the connection went where its lookup was checked.
    assert net.lookups == [PUBLIC, "127.0.0.1", PUBLIC]


def answering(*answers: str) -> Any:
    async def resolver(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(address) for address in answers]

    return resolver


async def test_one_private_answer_refuses_the_host_unless_private_targets_are_allowed() -> None:
    async with running_receiver() as receiver:
        port = port_of(receiver.url)
        mixed = answering("93.184.216.34", "127.0.0.1")  # any answer could be the one connected to
        with pytest.raises(UrlRefused, match=r"127\.0\.0\.1, a loopback address"):
            await GuardedBackend(resolver=mixed).connect_tcp("mixed.test", port, timeout=5)
        async with webhook_client(allow_private=True, timeout=5, headers={}, resolver=answering("127.0.0.1")) as client:
            answered = await client.post(f"http://allowed.test:{port}/webhook", content=b"{}")
    assert answered.status_code == 200 and receiver.received[0].headers["host"] == f"allowed.test:{port}"


async def test_the_metadata_host_name_and_unix_sockets_are_refused_without_a_lookup() -> None:
    async def never(host: str, port: int) -> list[IPAddress]:
        raise AssertionError("no lookup for a name refused as such")

    backend = GuardedBackend(resolver=never)
    with pytest.raises(UrlRefused, match="metadata"):
        await backend.connect_tcp("metadata.google.internal", 80)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_unix_socket("/var/run/docker.sock")
