"""What the HTTP provider clients share (Twilio, HTTP SMS, WhatsApp Cloud, custom): one
``httpx.AsyncClient`` per channel configuration, the address rule, and what a transport
failure comes to.

A client's connection pool is safe for many tasks at once and keeps up to
``maxConnections`` connections alive to the provider. Every call has the channel's
``timeoutSeconds`` for connecting (at most 5 s of it), each read and write, and the
wait for a free connection; a body is read for at most that long again, and at most
:data:`RESPONSE_CAP` bytes of it are kept (a longer one costs its connection). Redirects
are never followed, no proxy named by the environment is used, and no cookie is kept.

Addresses follow ``CLARION_WEBHOOKS_ALLOW_PRIVATE`` as webhooks do
(:mod:`clarion_shared.outbound_http`): unless ``allow_private``, a URL must be https,
and a host is resolved here and refused when any of its addresses is loopback,
private, link-local... before a socket exists (:class:`GuardedBackend`); the address
checked is the one connected to. A refused address fails the delivery
(``ERR_CHANNEL_CONFIG``): the channel's URL cannot be used.

A timeout or a connection that breaks after the request was written is retried: the
provider may have accepted it, so such a retry can send twice unless the provider
honours an idempotency key.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from clarion_shared.channel_settings.http_common import HttpSettings
from clarion_shared.contracts.base import JsonObject
from clarion_shared.e164 import is_e164
from clarion_shared.outbound_http import refused_reason, retry_after

from .base import (
    ERR_CHANNEL_CONFIG,
    ERR_INVALID_CONTACT_POINT,
    ERR_NO_CONTACT_POINT,
    ERR_PROVIDER_REJECTED,
    ERR_PROVIDER_UNAVAILABLE,
    ConfigError,
    Failed,
    Outcome,
    Retry,
    Sent,
)

# A rendered content the channel cannot send (e.g. a whatsapp content with neither text
# nor template): the template's fault, not the provider's, never retried.
RESPONSE_CAP = 64 * 1024  # bytes of a provider's answer read and kept
EXCERPT = 300  # characters of a provider's message kept in an outcome
CONNECT_TIMEOUT_MAX_S = 5.0
USER_AGENT = "Clarion/1"


class RefusedAddress(httpcore.ConnectError):
    """A host resolved to an address these calls may not reach (httpx reports it as a
    ``ConnectError`` caused by this)."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving each host itself and refusing it when any
    of its addresses is refused; it connects to the addresses it checked."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        for ip in addresses:
            reason = refused_reason(ip)
            if reason is not None:
                raise RefusedAddress(f"refused address: {ip} ({reason})")
        error: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    ip,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress("unix sockets are not reachable from provider calls")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, within_s: float | None) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within_s):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool that connects through :class:`GuardedBackend`.
    httpx takes no network backend, so the pool it built is replaced by one made with
    the same limits (httpx is pinned; a test proves the guard refuses loopback)."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(),
        )


def check_endpoint(url: str, allow_private: bool, field_name: str) -> None:
    """A ``ConfigError`` when ``url`` cannot be called under the address rule: http
    without ``allow_private``, or a host written as a refused address."""
    if allow_private:
        return
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        raise ConfigError(f"{field_name} must be an https URL")
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        raise ConfigError(f"{field_name} must not name a loopback address")
    reason = refused_reason(host) if _is_ip(host) else None
    if reason is not None:
        raise ConfigError(f"{field_name} must not name a refused address ({reason})")


def _is_ip(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()


def new_client(
    settings: HttpSettings,
    *,
    allow_private: bool,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """The channel's pooled client (one per channel configuration)."""
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
        keepalive_expiry=4.0,  # below the 5-s keep-alive of common servers
    )
    timeout = httpx.Timeout(
        settings.timeout_seconds, connect=min(settings.timeout_seconds, CONNECT_TIMEOUT_MAX_S)
    )
    transport: httpx.AsyncBaseTransport = (
        httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
        if allow_private
        else _GuardedTransport(limits)
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        headers={"user-agent": USER_AGENT, **(headers or {})},
        auth=auth,
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


@dataclass(frozen=True)
class Answer:
    """A provider's HTTP answer: status, headers, the first RESPONSE_CAP bytes."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    at_s: float = 0.0  # when it came (Unix seconds), for an HTTP-date Retry-After

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """408, 425, 429 and 5xx: worth trying again later."""
        return self.status in (408, 425, 429) or self.status >= 500

    def json(self) -> JsonObject:
        """The body as a JSON object; empty when it is not one."""
        try:
            value = json.loads(self.body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def excerpt(self) -> str:
        return self.body[:EXCERPT].decode("utf-8", errors="replace")

    def retry_after_s(self) -> float | None:
        return retry_after(self.headers.get("retry-after"), self.at_s)


async def post(client: httpx.AsyncClient, url: str, **request: Any) -> Answer | Outcome:
    """POSTs to ``url``: the answer, or what a transport failure comes to."""
    try:
        async with client.stream("POST", url, **request) as response:
            body = await _read_capped(response, client.timeout.read)
            return Answer(response.status_code, response.headers, body, time.time())
    except httpx.HTTPError as exc:
        return transport_outcome(exc)


async def _read_capped(response: httpx.Response, timeout_s: float | None) -> bytes:
    """The body's first RESPONSE_CAP bytes, read for at most ``timeout_s``. The status
    was the answer: a body that breaks or stalls only shortens what is kept."""
    kept = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in response.aiter_bytes():
                kept += chunk
                if len(kept) >= RESPONSE_CAP:
                    break
    except (TimeoutError, httpx.HTTPError):
        pass
    return bytes(kept[:RESPONSE_CAP])


def transport_outcome(exc: httpx.HTTPError) -> Outcome:
    """No HTTP answer: a refused address or a URL that cannot be called fails for good;
    a timeout or a connection error is retried."""
    detail = (str(exc) or type(exc).__name__)[:EXCERPT]
    if isinstance(exc.__cause__, RefusedAddress):
        return Failed(ERR_CHANNEL_CONFIG, str(exc.__cause__)[:EXCERPT])
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return Failed(ERR_CHANNEL_CONFIG, f"the channel's URL cannot be called: {detail}")
    if isinstance(exc, httpx.TimeoutException):
        return Retry(ERR_PROVIDER_UNAVAILABLE, f"timeout: {type(exc).__name__}")
    return Retry(ERR_PROVIDER_UNAVAILABLE, f"connection error: {detail}")


def contact_number(contact: JsonObject) -> str | Failed:
    """The user's ``contactNumber`` in E.164, or why there is none to send to."""
    value = contact.get("contactNumber")
    if value is None or (isinstance(value, str) and not value.strip()):
        return Failed(ERR_NO_CONTACT_POINT, "The user has no contactNumber.")
    if not is_e164(value):
        return Failed(
            ERR_INVALID_CONTACT_POINT,
            "The user's contactNumber is not an E.164 number (like +15551234567).",
        )
    assert isinstance(value, str)
    return value


def classify_http(answer: Answer, who: str) -> Outcome:
    """What a plain HTTP endpoint's answer comes to, by its status alone."""
    excerpt = answer.excerpt()
    words = f"{who} answered {answer.status}" + (f": {excerpt}" if excerpt else "")
    if answer.ok:
        found = answer.json().get("id")
        is_id = isinstance(found, str | int) and not isinstance(found, bool)
        return Sent(provider_id=str(found) if is_id and found != "" else None)
    if answer.transient:
        return Retry(ERR_PROVIDER_UNAVAILABLE, words, answer.retry_after_s())
    if answer.status in (401, 403):
        return Failed(ERR_CHANNEL_CONFIG, words)
    if 300 <= answer.status < 400:
        return Failed(ERR_PROVIDER_REJECTED, f"{words} (redirects are not followed)")
    return Failed(ERR_PROVIDER_REJECTED, words)


class HttpProvider:
    """The common part of an HTTP provider client: its pooled client and ``close``."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._http = client

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    async def close(self) -> None:
        await self._http.aclose()
