"""Which addresses a webhook may not reach, and the resolver that refuses names
resolving to them (the addresses actually connected to)."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from clarion_webhooks.deliveries.addresses import (
    GuardedResolver,
    RefusedAddress,
    literal_host,
    refused_reason,
)


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # reserved, which ipaddress counts as private
        ("255.255.255.255", "private"),
        ("192.0.2.10", "private"),  # documentation
        ("2001:db8::1", "private"),  # documentation
        ("not-an-ip", "not a canonical IP address"),
        ("2130706433", "not a canonical IP address"),
    ],
)
def test_refused_addresses(ip: str, reason: str) -> None:
    assert refused_reason(ip) == reason


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",  # just below the carrier-grade NAT range
        "100.128.0.1",  # just above
        "172.32.0.1",  # just above 172.16/12
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    ],
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert refused_reason(ip) is None


@pytest.mark.parametrize(
    ("host", "literal"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("2130706433", True),
        ("127.1", True),
        ("localhost", False),
        ("hooks.example.com", False),
        ("0x7f.0.0.1", False),  # a name to aiohttp: it goes through the resolver
    ],
)
def test_which_hosts_aiohttp_connects_to_without_resolving(host: str, literal: bool) -> None:
    assert literal_host(host) is literal


class Answers(AbstractResolver):
    """A resolver answering from a table (the DNS's part, not the network's)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for ip in self.table[host]
        ]

    async def close(self) -> None:
        self.closed = True


async def test_the_resolver_passes_public_names_and_refuses_any_refused_address() -> None:
    answers = Answers(
        {
            "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
            "rebound.example": ["93.184.215.14", "169.254.169.254"],
            "internal.example": ["10.1.2.3"],
        }
    )
    resolver = GuardedResolver(answers)
    found = await resolver.resolve("public.example", 443)
    assert [(r["host"], r["port"]) for r in found] == [
        ("93.184.215.14", 443),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 443),
    ]
    with pytest.raises(RefusedAddress) as rebound:
        await resolver.resolve("rebound.example", 443)
    assert str(rebound.value) == "refused address: 169.254.169.254 (cloud metadata)"
    with pytest.raises(RefusedAddress) as internal:
        await resolver.resolve("internal.example", 80)
    assert (internal.value.ip, internal.value.reason) == ("10.1.2.3", "private")
    await resolver.close()
    assert answers.closed
