"""Rules for HTTP calls to addresses a tenant chooses (webhook endpoints, a custom
channel's URL, a provider's ``baseUrl``): which addresses they may not reach, and how
long an answer asks the caller to wait.

The address rule is the webhook-emitter's (issue 9, item 5: server-side request
forgery), kept here so every service that calls a tenant's URL applies the same one:
loopback, private, link-local (the clouds' metadata services), shared, reserved,
multicast and other non-global addresses are refused, unless
``CLARION_WEBHOOKS_ALLOW_PRIVATE`` is set (local runs and tests). An address is checked
where the connection is made, after the name is resolved, not only when the URL is
registered: a name may resolve elsewhere tomorrow (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
from datetime import UTC
from email.utils import parsedate_to_datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IpAddress = IPv4Address | IPv6Address

# Answered on a link-local or private address by the clouds (AWS, GCP, Azure: the
# first; AWS's IPv6: the second; Alibaba: the third). Named for the log's sake: the
# first two are refused as link-local and private anyway.
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
SHARED = IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598): inside a provider
NAT64 = IPv6Network("64:ff9b::/96")  # IPv4 addresses reached through a NAT64 gateway


def refused_reason(ip: str) -> str | None:
    """Why a call may not go to ``ip`` (``"loopback"``, ``"private"``...), or None for
    an address on the public internet. An IPv6 address carrying an IPv4 one
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


def retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from ``now_s`` by a ``Retry-After`` header: delta-seconds or an
    HTTP-date (RFC 9110, 10.2.3); None when absent or unparsable, 0 for a past date."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, with no local offset known (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_s)
