"""Which addresses a webhook may not reach (issue 9, item 5: server-side request forgery).

An endpoint's URL is checked where the connection is made, not only when it is
registered: a name that resolved to a public address yesterday may resolve to
``127.0.0.1`` or the cloud's metadata service today (DNS rebinding). So the emitter's
HTTP client resolves names with :class:`GuardedResolver`, which refuses a name with any
refused address before a socket exists, and the addresses it returns are the ones
connected to (aiohttp caches them as they are). A host written as an address is never
given to a resolver by aiohttp; the sender checks those with :func:`literal_host` and
:func:`refused_reason` itself.
"""

from __future__ import annotations

import ipaddress
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from aiohttp.abc import AbstractResolver, ResolveResult

IpAddress = IPv4Address | IPv6Address

# Answered on a link-local or private address by the clouds (AWS, GCP, Azure: the
# first; AWS's IPv6: the second; Alibaba: the third). Named for the log's sake: the
# first two are refused as link-local and private anyway.
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
SHARED = IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598): inside a provider
NAT64 = IPv6Network("64:ff9b::/96")  # IPv4 addresses reached through a NAT64 gateway


class RefusedAddress(OSError):
    """A name resolved to an address webhooks may not reach. An ``OSError``, as a
    failed lookup is: aiohttp reports it as a ``ClientConnectorDNSError`` wrapping it."""

    def __init__(self, ip: str, reason: str) -> None:
        super().__init__(f"refused address: {ip} ({reason})")
        self.ip = ip
        self.reason = reason


def refused_reason(ip: str) -> str | None:
    """Why a webhook may not be delivered to ``ip`` (``"loopback"``, ``"private"``...),
    or None for an address on the public internet. An IPv6 address carrying an IPv4 one
    (IPv4-mapped, 6to4, NAT64) is judged by the IPv4 address it reaches; a zone
    (``fe80::1%eth0``) is ignored. Anything that does not parse as an address is
    refused: it is not one a policy can vouch for."""
    try:
        address = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return "not a canonical IP address"
    return _reason(address)


def _reason(address: IpAddress) -> str | None:
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or _nat64(address)
        if embedded is not None:
            return _reason(embedded)
    if address in METADATA:
        return "cloud metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, IPv4Address) and address in SHARED:
        return "carrier-grade NAT"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:  # documentation, benchmarking and other special ranges
        return "not global"
    return None


def _nat64(address: IPv6Address) -> IPv4Address | None:
    if address not in NAT64:
        return None
    return IPv4Address(int(address) & 0xFFFFFFFF)


def literal_host(host: str) -> bool:
    """Whether aiohttp connects to ``host`` as written, without asking the resolver: as
    its ``helpers.is_ip_address`` decides, any host with a colon or made of digits and
    dots only."""
    return ":" in host or host.replace(".", "").isdigit()


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing a name when any address it resolves to is refused
    (:class:`RefusedAddress`): the addresses returned are the ones connected to."""

    def __init__(self, resolver: AbstractResolver) -> None:
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        for result in found:
            reason = refused_reason(result["host"])
            if reason is not None:
                raise RefusedAddress(result["host"], reason)
        return found

    async def close(self) -> None:
        await self._resolver.close()
