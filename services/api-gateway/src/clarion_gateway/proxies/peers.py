"""HTTP client of the other services' internal APIs (``/internal/apps/{app_id}/...``).

Their answers use the public envelopes already, so the gateway forwards status and body
as they are, with the few response headers a client may see (never ``Location``: it
would name an internal address). Only transport failures are the gateway's to report.

Every request carries the services' shared secret (``X-Clarion-Internal-Token``). A peer
answering 401 refused it: the deployment's tokens differ, the gateway's failure (503 and
an error log line), not the client's.

A pooled connection can die under a request: the peer closed it (a restart; before
issue 6, every unhandled error) just as the request was sent on it. Such a request is
sent once more, on a new connection, when that cannot do anything twice: when no
connection was made, or when its method is idempotent. A POST that may have reached
the peer is not repeated (503, as before). Timeouts are never retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Literal

import httpx

from clarion_shared.caller import unless_caller_gone
from clarion_shared.http import correlation_headers, internal_headers
from clarion_shared.logging import get_logger

log = get_logger(__name__)

Peer = Literal["dispatcher", "directory", "webhooks"]
PEERS: tuple[Peer, ...] = ("dispatcher", "directory", "webhooks")

# Response headers a client may see: what the body is, how to cache it, when to retry,
# which methods the path allows (405). Not ``location`` (an internal address), nor
# hop-by-hop, length or the peer's own headers: the gateway sets its own.
FORWARDED_RESPONSE_HEADERS = frozenset(
    {"content-type", "retry-after", "cache-control", "etag", "last-modified", "allow"}
)
FORWARDED_REQUEST_HEADERS = frozenset({"content-type", "accept", "last-event-id"})
# Methods whose repetition has the effect of one request (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Below uvicorn's 5-s keep-alive timeout: the gateway lets an idle connection go before
# the peer closes it, never sending on one the peer is closing at that moment.
KEEPALIVE_EXPIRY_S = 2.0
MAX_CONNECTIONS = 100  # httpx's defaults
MAX_KEEPALIVE_CONNECTIONS = 20


class PeerUnavailable(Exception):
    """The peer is unreachable, or did not answer in time (``timed_out``)."""

    def __init__(self, peer: Peer, timed_out: bool, detail: str) -> None:
        super().__init__(f"{peer}: {detail}")
        self.peer = peer
        self.timed_out = timed_out


@dataclass(frozen=True)
class Forward:
    """One request to pass on: ``path`` is below the peer's base URL."""

    method: str
    path: str
    query: str
    body: bytes
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PeerResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PeerStream:
    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: AsyncIterator[bytes]
    response: httpx.Response

    async def aclose(self) -> None:
        await self.response.aclose()


def request_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    kept = [(k, v) for k, v in headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS]
    return tuple(kept)


def _response_headers(response: httpx.Response) -> tuple[tuple[str, str], ...]:
    return tuple(
        (k, v) for k, v in response.headers.items() if k.lower() in FORWARDED_RESPONSE_HEADERS
    )


def replayable(method: str, error: httpx.TransportError) -> bool:
    """Whether a request that failed with ``error`` may be sent again: it never left
    (no connection), or sending it twice does what sending it once does. A timeout
    may mean the peer is still working on it: never."""
    if isinstance(error, httpx.TimeoutException):
        return False
    return isinstance(error, httpx.ConnectError) or method.upper() in IDEMPOTENT_METHODS


def _unavailable(peer: Peer, error: httpx.TransportError) -> PeerUnavailable:
    return PeerUnavailable(peer, isinstance(error, httpx.TimeoutException), repr(error))


class Peers:
    """The HTTP clients of the peers: closed when the service stops.

    ``pooled`` keeps connections alive between requests; ``fresh`` opens a connection
    per request (a retry, which must not land on another dying pooled connection, and
    streams, which hold theirs for minutes and gain nothing from a pool).
    """

    def __init__(
        self, pooled: httpx.AsyncClient, fresh: httpx.AsyncClient, base_urls: Mapping[Peer, str]
    ) -> None:
        self._pooled = pooled
        self._fresh = fresh
        self._base_urls = {peer: url.rstrip("/") for peer, url in base_urls.items()}

    @classmethod
    def connect(
        cls,
        base_urls: Mapping[Peer, str],
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        internal_token: str,
    ) -> Peers:
        """Clients of ``base_urls`` sending ``internal_token`` (``transport``: httpx's,
        a mock one in tests)."""
        pooled = httpx.Limits(
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        )
        unpooled = httpx.Limits(max_connections=None, max_keepalive_connections=0)

        def client(limits: httpx.Limits) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=transport or httpx.AsyncHTTPTransport(limits=limits),
                timeout=httpx.Timeout(timeout_s, connect=3.0),
                headers=internal_headers(internal_token),
                follow_redirects=False,
            )

        return cls(client(pooled), client(unpooled), base_urls)

    async def start(self) -> None:
        return None  # connections are made on first use

    async def stop(self) -> None:
        await self._pooled.aclose()
        await self._fresh.aclose()

    async def forward(self, peer: Peer, forward: Forward) -> PeerResponse:
        # A client that leaves cancels the call: the peer sees its caller go, in turn.
        response = await unless_caller_gone(self._send(peer, forward, self._pooled))
        return PeerResponse(response.status_code, response.content, _response_headers(response))

    async def stream(self, peer: Peer, forward: Forward) -> PeerStream:
        """For long-lived answers (server-sent events): no read timeout."""
        response = await self._send(peer, forward, self._fresh, stream=True)
        return PeerStream(
            response.status_code, _response_headers(response), response.aiter_bytes(), response
        )

    async def ready(self, peer: Peer) -> bool:
        try:
            response = await self._pooled.get(f"{self._base_urls[peer]}/readyz", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _send(
        self, peer: Peer, forward: Forward, client: httpx.AsyncClient, stream: bool = False
    ) -> httpx.Response:
        """Sends ``forward``; once more on a new connection when the first attempt's
        connection failed and that is safe (:func:`replayable`)."""
        try:
            response = await self._attempt(client, peer, forward, stream)
        except httpx.TransportError as exc:
            if not replayable(forward.method, exc):
                raise _unavailable(peer, exc) from exc
            log.info("peer.retry", peer=peer, method=forward.method, error=repr(exc))
            try:
                response = await self._attempt(self._fresh, peer, forward, stream)
            except httpx.TransportError as again:
                raise _unavailable(peer, again) from again
        if response.status_code == 401:
            await response.aclose()
            log.error("peer.internal_token_refused", peer=peer)
            raise PeerUnavailable(peer, False, "refused the internal token")
        return response

    async def _attempt(
        self, client: httpx.AsyncClient, peer: Peer, forward: Forward, stream: bool
    ) -> httpx.Response:
        url = f"{self._base_urls[peer]}{forward.path}"
        if forward.query:
            url = f"{url}?{forward.query}"
        request = client.build_request(
            forward.method,
            url,
            content=forward.body or None,
            headers={**dict(forward.headers), **correlation_headers()},
            timeout=httpx.Timeout(10.0, read=None) if stream else httpx.USE_CLIENT_DEFAULT,
        )
        return await client.send(request, stream=stream)
