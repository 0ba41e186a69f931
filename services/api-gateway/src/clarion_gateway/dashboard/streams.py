"""The pages' live parts: server-sent events of HTML fragments, with heartbeats, for
htmx's sse extension to swap in; for a watch (``live.service.watch``), each of its
snapshots rendered, as the public streams (``live.service.sse_events``) send their JSON.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable

from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from clarion_shared.logging import get_logger
from clarion_shared.sse import SSE_HEADERS, encode_event, with_heartbeat

from ..live.models import Snapshot
from ..proxies.peers import PeerUnavailable

log = get_logger(__name__)

HEARTBEAT_S = 15.0  # a comment this often while nothing changes, as the public streams

Render = Callable[[Snapshot], str]


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        with_heartbeat(events, HEARTBEAT_S), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def first_snapshot(snapshots: AsyncGenerator[Snapshot, None]) -> Snapshot:
    """The watch's first snapshot, read before the stream starts (so that an unknown
    send or campaign is a 404 page); the watch is closed when there is none."""
    try:
        return await anext(snapshots)
    except BaseException:
        await snapshots.aclose()
        raise


async def fragment_events(
    snapshots: AsyncGenerator[Snapshot, None], first: Snapshot, render: Render
) -> AsyncIterator[str]:
    """``first``, then the rest of ``snapshots``, as server-sent events of HTML:
    ``progress`` for each, ``done`` for the final one; the stream then ends (as it
    does when a peer stops answering: the browser's EventSource reconnects)."""
    number, snapshot = 0, first
    try:
        while True:
            number += 1
            kind = "done" if snapshot.final else "progress"
            yield encode_event(kind, render(snapshot), str(number))
            if snapshot.final:
                return
            try:
                following = await anext(snapshots, None)
            except (PeerUnavailable, ValidationError) as exc:
                log.warning("dashboard.stream_ended", error=repr(exc))
                return
            if following is None:
                return
            snapshot = following
    finally:
        await snapshots.aclose()  # the watch's subscription ends with the stream
