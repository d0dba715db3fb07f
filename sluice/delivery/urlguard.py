"""SSRF guard for webhook URLs: refuse targets that resolve to private, loopback, link-local, CGNAT, multicast,
metadata or other non-public addresses, unless the project allows them (development mode does).

Every address a host name resolves to is checked, so decimal/hex/octal IP spellings, IPv4 addresses inside IPv6 ones
(mapped, compatible, NAT64, 6to4) and DNS names pointing inside are caught. The check runs when a request is
accepted, and at connect time for every connection a delivery opens (`sluice.delivery.egress`): the address
connected to is the address checked, so a DNS answer that changes in between (rebinding) reaches nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from sluice.errors import Unprocessable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) → every address the host resolves to; a literal IP is its own answer.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# Named because a clear message says which rule refused the URL.
_BLOCKED_NETWORKS: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "'this network'"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local / cloud metadata"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("fd00:ec2::254/128", "cloud metadata"),
)
BLOCKED = tuple((ipaddress.ip_network(cidr), label) for cidr, label in _BLOCKED_NETWORKS)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits and reach it: judged by that address.
_IPV4_CARRIERS = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96"))
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data", "metadata.azure.internal"})


class UrlRefused(Unprocessable):
    code = "webhook_url_not_allowed"


def blocked_reason(address: IPAddress) -> str | None:
    """Why this address may not receive webhooks, or None if it is public."""
    for network, label in BLOCKED:
        if address.version == network.version and address in network:
            return label
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return blocked_reason(embedded)  # ::ffff:127.0.0.1, 64:ff9b::7f00:1, 2002:7f00:1:: all reach 127.0.0.1
    if not address.is_global:  # any other special-purpose range of the IANA registries: not a public host
        return "reserved (not globally routable)"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64
    (64:ff9b::a.b.c.d) or 6to4 (2002:aabb:ccdd::)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in carrier for carrier in _IPV4_CARRIERS):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def parse_webhook_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; raises `UrlRefused` for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"webhook_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("webhook_url must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise UrlRefused("webhook_url must not carry credentials; sign requests with the webhook secret instead")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlRefused(f"webhook_url host {host!r} does not resolve: {exc.strerror}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def public_addresses(host: str, port: int, resolver: Resolver = resolve) -> list[IPAddress]:
    """Every address `host` resolves to (one lookup), if all are public; else `UrlRefused` naming the first that is
    not. One non-public answer refuses the host: the connection could be made to any of them."""
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise UrlRefused(f"webhook_url host {host!r} is a cloud metadata service")
    addresses = await resolver(host, port)
    for address in addresses:
        reason = blocked_reason(address)
        if reason is not None:
            raise UrlRefused(
                f"webhook_url {host!r} resolves to {address}, a {reason} address; webhooks go only to public "
                "addresses unless the project allows private ones (PUT /v1/admin/webhooks/settings "
                '{"allow_private_urls": true}) or SLUICE_ENV=development'
            )
    return addresses


async def check_webhook_url(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> None:
    """Raise `UrlRefused` (422) if the URL is malformed, or — unless `allow_private` — reaches a non-public address."""
    host, port = parse_webhook_url(url)
    if not allow_private:
        await public_addresses(host, port, resolver)
