"""Which addresses a webhook may not reach (issue 9, item 5: server-side request forgery).

An endpoint's URL is checked where the connection is made, not only when it is
registered: a name that resolved to a public address yesterday may resolve to
``127.0.0.1`` or the cloud's metadata service today (DNS rebinding). So the emitter's
HTTP client resolves names with :class:`GuardedResolver`, which refuses a name with any
refused address before a socket exists, and the addresses it returns are the ones
connected to (aiohttp caches them as they are). A host written as an address is never
given to a resolver by aiohttp; the sender checks those with :func:`literal_host` and
:func:`refused_reason` itself. The rule itself (``clarion_shared.outbound_http``) is the
one every outgoing call of Clarion follows (custom channels too).
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from clarion_shared.outbound_http import refused_reason

__all__ = ["GuardedResolver", "RefusedAddress", "literal_host", "refused_reason"]


class RefusedAddress(OSError):
    """A name resolved to an address webhooks may not reach. An ``OSError``, as a
    failed lookup is: aiohttp reports it as a ``ClientConnectorDNSError`` wrapping it."""

    def __init__(self, ip: str, reason: str) -> None:
        super().__init__(f"refused address: {ip} ({reason})")
        self.ip = ip
        self.reason = reason


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
