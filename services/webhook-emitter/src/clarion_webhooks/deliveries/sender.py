"""The HTTP call of one delivery attempt: a signed POST, and what came of it.

One ``aiohttp`` session serves every endpoint: to a local keep-alive receiver, httpx's
AsyncClient made ~520 requests/s on the dev machine, aiohttp ~8,400, this sender ~7,800
signed deliveries/s with 64 in flight (the issue asks for 2,000). Whatever the network
or the endpoint does, :meth:`Sender.send` answers an :class:`Outcome`; it raises only
for a caller's mistake.

What an endpoint can do to the emitter is bounded: a connect timeout and one for the
whole call, redirects never followed (a 3xx is an answer like any non-2xx), at most
:data:`RESPONSE_CAP` bytes of a body read (a longer one costs its connection, not the
time to drain it), and no connection to an address :mod:`.addresses` refuses unless
private addresses are allowed (local runs and tests).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from yarl import URL

from clarion_shared.outbound_http import retry_after
from clarion_shared.webhook_signing import signed_headers

from .addresses import GuardedResolver, RefusedAddress, literal_host, refused_reason

RESPONSE_CAP: Final = 1024  # bytes of an endpoint's answer kept with the attempt
DNS_TTL_S: Final = 30  # how long a name's (checked) addresses are reused
# Below the 5-s keep-alive of common servers (uvicorn, Node): the emitter lets an idle
# connection go before the endpoint closes it, never posting on one being closed.
KEEPALIVE_S: Final = 4.0
ERROR_DETAIL_CAP: Final = 200
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: an HTTP answer (``status_code``), or an ``error``."""

    status_code: int | None  # None when no HTTP answer
    # None on any HTTP answer; else "timeout", "connection error: ...",
    # "refused address: <ip> (<why>)" or "invalid url: ...".
    error: str | None
    duration_ms: int
    response: str | None  # the answer's first RESPONSE_CAP bytes, decoded; None without one
    retry_after_s: float | None  # a 429's or 503's Retry-After, when it parses

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410: the endpoint asks not to be called again."""
        return self.status_code == 410


def basic_authorization(username: str, password: str) -> str:
    """RFC 7617's credentials, as every client sends them (UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _short(exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    return detail[:ERROR_DETAIL_CAP]


def _failed(started: float, error: str) -> Outcome:
    return Outcome(None, error, _elapsed_ms(started), None, None)


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _unusable(url: str, allow_private: bool) -> str | None:
    """Why ``url`` is not posted to before any connection: not http(s), no host, user
    info (the gateway refuses it too), or (unless ``allow_private``) a refused address
    written as the host, which aiohttp connects to without asking the resolver."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        return f"invalid url: {_short(exc)}"
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return "invalid url: not an http(s) URL with a host"
    if parsed.raw_user is not None or parsed.raw_password is not None:
        return "invalid url: user info in the URL (Basic Auth is set apart)"
    host = parsed.raw_host
    if allow_private or not literal_host(host):
        return None
    reason = refused_reason(host)
    return None if reason is None else f"refused address: {host} ({reason})"


class Sender:
    """The emitter's HTTP client: a Resource (the session exists between start and
    stop). ``max_connections`` bounds the sockets open at once, ``max_per_host`` those
    to one endpoint's host: a slow endpoint holds at most that many."""

    def __init__(
        self,
        *,
        connect_timeout_s: float = 5.0,
        timeout_s: float = 15.0,
        allow_private: bool = False,
        max_connections: int = 512,
        max_per_host: int = 64,
        user_agent: str = "Clarion-Webhooks/1",
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._allow_private = allow_private
        self._max_connections = max_connections
        self._max_per_host = max_per_host
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._resolver: AbstractResolver | None = None

    async def start(self) -> None:
        resolver: AbstractResolver = DefaultResolver()
        if not self._allow_private:
            resolver = GuardedResolver(resolver)
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=self._max_per_host,
            ttl_dns_cache=DNS_TTL_S,
            keepalive_timeout=KEEPALIVE_S,
            resolver=resolver,
        )
        self._resolver = resolver
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"user-agent": self._user_agent},
            trust_env=False,  # never through a proxy the environment names
            # No cookies: one endpoint's Set-Cookie must never ride along to another
            # app's endpoint on the same domain.
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def stop(self) -> None:
        session, resolver = self._session, self._resolver
        self._session = self._resolver = None
        if session is not None:
            await session.close()
        if resolver is not None:
            await resolver.close()  # the connector leaves a resolver it was given

    async def send(
        self,
        url: str,
        msg_id: str,
        body: bytes,
        secrets: Sequence[str],
        basic_auth: tuple[str, str] | None,
        now_s: int,
    ) -> Outcome:
        """POSTs ``body`` to ``url`` signed with every secret in ``secrets``
        (``webhook-timestamp``: ``now_s``), with Basic Auth when given."""
        if self._session is None:
            raise RuntimeError("the sender is not started")
        started = time.monotonic()
        unusable = _unusable(url, self._allow_private)
        if unusable is not None:
            return _failed(started, unusable)
        headers = {
            "content-type": "application/json",
            **signed_headers(secrets, msg_id, now_s, body),
        }
        if basic_auth is not None:
            headers["authorization"] = basic_authorization(*basic_auth)
        try:
            return await self._post(url, body, headers, now_s, started)
        except TimeoutError:  # aiohttp's timeouts are TimeoutErrors too
            return _failed(started, "timeout")
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                return _failed(started, str(exc.os_error))
            return _failed(started, f"connection error: {_short(exc)}")
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            return _failed(started, f"invalid url: {_short(exc)}")
        except aiohttp.ClientError as exc:
            return _failed(started, f"connection error: {_short(exc)}")

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], now_s: int, started: float
    ) -> Outcome:
        assert self._session is not None
        async with self._session.post(
            url, data=body, headers=headers, allow_redirects=False
        ) as answer:
            kept = await _read_capped(answer)
            status = answer.status
            waited = (
                retry_after(answer.headers.get("retry-after"), now_s)
                if status in RETRY_AFTER_STATUSES
                else None
            )
            return Outcome(
                status_code=status,
                error=None,
                duration_ms=_elapsed_ms(started),
                response=kept.decode("utf-8", errors="replace"),
                retry_after_s=waited,
            )


async def _read_capped(answer: aiohttp.ClientResponse) -> bytes:
    """The body's first RESPONSE_CAP bytes. A body read to its end leaves the connection
    to the pool; a longer one closes it rather than reading megabytes nobody keeps.
    The status line was the answer: a body that breaks or stalls after it only shortens
    what is kept."""
    kept = bytearray()
    try:
        while len(kept) < RESPONSE_CAP:
            chunk = await answer.content.read(RESPONSE_CAP - len(kept))
            if not chunk:
                break
            kept += chunk
    except (TimeoutError, aiohttp.ClientError):
        answer.close()
        return bytes(kept)
    if answer.content.at_eof():
        answer.release()
    else:
        answer.close()
    return bytes(kept)
