"""The HTTP client webhooks go out with: the SSRF guard applied where each connection is made.

Checking a URL's host and then letting the HTTP client look it up again leaves a gap: a DNS answer that changes
between the two (DNS rebinding: a public address for the check, 127.0.0.1 for the connection) reaches the private
network. Here the lookup, the check and the connection are one step: each new connection resolves the host once
(`urlguard.resolve`, or the resolver given), refuses it if any answer is not public (`urlguard.public_addresses`)
unless the project allows private targets, and connects to a checked address — no second lookup. TLS still verifies
the certificate against the host name (httpcore passes the URL's host as the server name). Redirects are never
followed (a 3xx is a failed attempt), and no proxy is used, so no other host is ever reached. A pooled connection
was checked when it was opened.

The seam is httpcore's network backend (`connect_tcp`), the one place httpx turns a host into a socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpcore
import httpx

from sluice.delivery.urlguard import IPAddress, Resolver, public_addresses, resolve

# httpcore's own alias (not exported): what `setsockopt` takes.
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections to an address of the host checked by the SSRF guard (any address with
    `allow_private`), looked up once per connection."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._addresses(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"looking up {host!r} took longer than {timeout:g}s") from None
        failure: Exception = httpcore.ConnectError(f"{host!r} resolves to no address")
        for address in addresses:  # in the resolver's order, as a client without the guard would try them
            try:
                return await self.inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        if self.allow_private:
            return await self.resolver(host, port)
        return await public_addresses(host, port, self.resolver)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request mapping, errors, pooling), with its connections opened by `GuardedBackend`."""

    def __init__(self, backend: GuardedBackend) -> None:
        super().__init__(trust_env=False)
        # The pool is the transport's only state; httpx 0.28 takes no network backend, so it is built here as
        # `AsyncHTTPTransport.__init__` builds it, with the guarded backend (httpx is pinned: see pyproject.toml).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def webhook_client(
    *, allow_private: bool, timeout: float, headers: dict[str, str], resolver: Resolver = resolve
) -> httpx.AsyncClient:
    """A client for webhook attempts: guarded connections, no redirects followed, no proxy from the environment."""
    transport = GuardedTransport(GuardedBackend(allow_private=allow_private, resolver=resolver))
    return httpx.AsyncClient(
        transport=transport, follow_redirects=False, timeout=timeout, trust_env=False, headers=headers
    )
