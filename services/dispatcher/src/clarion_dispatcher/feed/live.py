"""Live feeds: new feed items pushed to the users' open server-sent-event streams.

Any dispatcher instance may write a user's item, and any may hold that user's stream.
So each instance reads ``clarion.status`` from its end (a :class:`TopicTail`, no
consumer group) and hands every ``FeedItemSent`` to its :class:`FeedHub`, which passes
it to the streams of that item's owner open on this instance, and to no one else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Gauge
from pydantic import ValidationError

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.status import FeedItemSent, status_event_adapter
from clarion_shared.logging import get_logger
from clarion_shared.tail import TopicTail

from .domain import feed_owner

log = get_logger(__name__)

OPEN_STREAMS = Gauge("clarion_feed_streams_open", "Live feed streams open on this instance")


class FeedHub:
    """The streams open on this instance, by owner (``app:uid``).

    Each stream has a bounded queue: a client that stops reading loses its oldest
    pending items rather than holding memory without end (it can list the feed to catch
    up). A closed stream leaves nothing behind.
    """

    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._streams: dict[str, set[asyncio.Queue[JsonObject]]] = {}

    @property
    def open_streams(self) -> int:
        return sum(len(queues) for queues in self._streams.values())

    @contextmanager
    def subscribe(self, owner: str) -> Iterator[asyncio.Queue[JsonObject]]:
        queue: asyncio.Queue[JsonObject] = asyncio.Queue(self._queue_size)
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

    def publish(self, owner: str, item: JsonObject) -> None:
        for queue in self._streams.get(owner, ()):
            if queue.full():
                queue.get_nowait()  # the oldest goes; see the class docstring
            queue.put_nowait(item)

    def on_status_record(self, value: bytes) -> None:
        """One record of ``clarion.status``: a new feed item goes to its owner's streams."""
        if b'"feed_item_sent"' not in value:
            return  # most events are not new feed items: skip the parse
        try:
            event = status_event_adapter.validate_json(value)
        except ValidationError as exc:
            log.warning("feed.live_bad_event", error=str(exc)[:200])
            return
        if not isinstance(event, FeedItemSent):
            return
        receiver = event.feed_item.get("receiver")
        if isinstance(receiver, str):
            self.publish(feed_owner(event.app_id, receiver), event.feed_item)


def status_tail(
    bootstrap_servers: str, status_topic: str, hub: FeedHub, fetch_max_wait_ms: int = 5
) -> TopicTail:
    """What feeds ``hub``: this instance's reader of the status topic."""
    return TopicTail(bootstrap_servers, status_topic, hub.on_status_record, fetch_max_wait_ms)
