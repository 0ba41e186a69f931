"""Live feeds: new feed items pushed to the users' open server-sent-event streams.

Any dispatcher instance may write a user's item, and any may hold that user's stream.
So each instance reads ``clarion.status`` from its end (a :class:`TopicTail`, no
consumer group) and hands every ``FeedItemSent`` to its :class:`FeedHub`, which passes
it to the streams of that item's owner open on this instance, and to no one else.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from prometheus_client import Gauge

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.status import FeedItemSent
from clarion_shared.logging import get_logger
from clarion_shared.tail import FETCH_MAX_WAIT_MS, TopicTail

from .domain import feed_owner

log = get_logger(__name__)

FEED_ITEM_SENT = FeedItemSent.model_fields["type"].default

OPEN_STREAMS = Gauge("clarion_feed_streams_open", "Live feed streams open on this instance")


class Source(Protocol):
    """What feeds the hub (the status tail): paused while no stream is open."""

    def pause(self) -> None: ...

    async def resume_at_end(self) -> None: ...


class FeedHub:
    """The streams open on this instance, by owner (``app:uid``).

    Each stream has a bounded queue: a client that stops reading loses its oldest
    pending items rather than holding memory without end (it can list the feed to catch
    up). A closed stream leaves nothing behind. While no stream is open, the hub's
    source is paused: a dispatcher without live clients reads no status events (during
    a 10,000-receiver fan-out, reading them cost ~0.6 s of its event loop).
    """

    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._streams: dict[str, set[asyncio.Queue[JsonObject]]] = {}
        self._source: Source | None = None
        self._lock = asyncio.Lock()

    def attach(self, source: Source) -> None:
        self._source = source

    @property
    def open_streams(self) -> int:
        return sum(len(queues) for queues in self._streams.values())

    @asynccontextmanager
    async def subscribe(self, owner: str) -> AsyncIterator[asyncio.Queue[JsonObject]]:
        """A queue of ``owner``'s new items, live once this has entered."""
        queue: asyncio.Queue[JsonObject] = asyncio.Queue(self._queue_size)
        async with self._lock:
            if not self._streams and self._source is not None:
                await self._source.resume_at_end()
            self._streams.setdefault(owner, set()).add(queue)
        OPEN_STREAMS.inc()
        try:
            yield queue
        finally:
            OPEN_STREAMS.dec()
            queues = self._streams.get(owner)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._streams[owner]
            if not self._streams and self._source is not None:
                self._source.pause()

    def publish(self, owner: str, item: JsonObject) -> None:
        for queue in self._streams.get(owner, ()):
            if queue.full():
                queue.get_nowait()  # the oldest goes; see the class docstring
            queue.put_nowait(item)

    def on_status_record(self, value: bytes) -> None:
        """One record of ``clarion.status``: a new feed item goes to its owner's streams.

        This runs for every status event of every send, on the fan-out's event loop: it
        does nothing while no stream is open, and reads only what routing needs (the
        full contract is validated by the event's consumers, not here).
        """
        if not self._streams or b'"feed_item_sent"' not in value:
            return
        try:
            event = json.loads(value)
        except ValueError:
            log.warning("feed.live_bad_event", size=len(value))
            return
        if not isinstance(event, dict) or event.get("type") != FEED_ITEM_SENT:
            return
        app_id, item = event.get("app_id"), event.get("feed_item")
        if not isinstance(app_id, str) or not isinstance(item, dict):
            return
        receiver = item.get("receiver")
        if isinstance(receiver, str):
            self.publish(feed_owner(app_id, receiver), item)


def status_tail(
    bootstrap_servers: str,
    status_topic: str,
    hub: FeedHub,
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
) -> TopicTail:
    """What feeds ``hub``: this instance's reader of the status topic, paused until the
    first stream opens."""
    tail = TopicTail(
        bootstrap_servers, status_topic, hub.on_status_record, fetch_max_wait_ms, paused=True
    )
    hub.attach(tail)
    return tail
