"""HTTP client of the other services' internal APIs (``/internal/apps/{app_id}/...``).

Their answers use the public envelopes already, so the gateway forwards status and body
as they are. Only transport failures are the gateway's to report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Literal

import httpx

from clarion_shared.http import correlation_headers

Peer = Literal["dispatcher", "directory", "webhooks"]
PEERS: tuple[Peer, ...] = ("dispatcher", "directory", "webhooks")

# Response headers worth passing back to the client; hop-by-hop and length headers are
# the gateway's own.
FORWARDED_RESPONSE_HEADERS = frozenset(
    {"content-type", "retry-after", "cache-control", "location", "etag", "last-modified"}
)
FORWARDED_REQUEST_HEADERS = frozenset({"content-type", "accept", "last-event-id"})


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


class Peers:
    """The HTTP client of the peers: closed when the service stops."""

    def __init__(self, client: httpx.AsyncClient, base_urls: Mapping[Peer, str]) -> None:
        self._client = client
        self._base_urls = {peer: url.rstrip("/") for peer, url in base_urls.items()}

    @classmethod
    def connect(
        cls,
        base_urls: Mapping[Peer, str],
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Peers:
        """A client of ``base_urls`` (``transport``: httpx's, a mock one in tests)."""
        client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=3.0),
            follow_redirects=False,
        )
        return cls(client, base_urls)

    async def start(self) -> None:
        return None  # connections are made on first use

    async def stop(self) -> None:
        await self._client.aclose()

    def _request(self, peer: Peer, forward: Forward) -> httpx.Request:
        url = f"{self._base_urls[peer]}{forward.path}"
        if forward.query:
            url = f"{url}?{forward.query}"
        headers = dict(forward.headers)
        headers.update(correlation_headers())
        return self._client.build_request(
            forward.method, url, content=forward.body or None, headers=headers
        )

    async def forward(self, peer: Peer, forward: Forward) -> PeerResponse:
        try:
            response = await self._client.send(self._request(peer, forward))
        except httpx.TimeoutException as exc:
            raise PeerUnavailable(peer, True, repr(exc)) from exc
        except httpx.TransportError as exc:
            raise PeerUnavailable(peer, False, repr(exc)) from exc
        return PeerResponse(response.status_code, response.content, _response_headers(response))

    async def stream(self, peer: Peer, forward: Forward) -> PeerStream:
        """For long-lived answers (server-sent events): no read timeout."""
        request = self._request(peer, forward)
        request.extensions["timeout"] = httpx.Timeout(10.0, read=None).as_dict()
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise PeerUnavailable(peer, isinstance(exc, httpx.TimeoutException), repr(exc)) from exc
        return PeerStream(
            response.status_code, _response_headers(response), response.aiter_bytes(), response
        )

    async def ready(self, peer: Peer) -> bool:
        try:
            response = await self._client.get(f"{self._base_urls[peer]}/readyz", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200
