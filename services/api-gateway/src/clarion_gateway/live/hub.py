"""The sends watched on this instance, and what tells them something happened.

Any dispatcher may fan a send out and any gateway instance may hold its watchers, so
each instance reads ``clarion.status`` from its end (a :class:`TopicTail`, no consumer
group) and hands every record to its :class:`LiveHub`, which wakes the watchers of that
record's send, on this instance, and no one else. A watcher is told only *that*
something happened: it reads its snapshot from the read model itself, so a burst of
events costs one read, and nothing a slow client holds grows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Gauge

from clarion_shared.contracts.status import (
    BatchCompleted,
    CampaignFinished,
    ChunkDispatched,
    DeliveryFailed,
    DeliverySent,
    FeedItemDelivered,
    FeedItemRead,
    ReceiversSettled,
)
from clarion_shared.logging import get_logger
from clarion_shared.tail import FETCH_MAX_WAIT_MS, TopicTail

log = get_logger(__name__)

SendKey = tuple[str, str]
"""(app id, send id): a batch's id, or a campaign's (its events' ``send_id``)."""

# The events that change what a snapshot shows: a chunk's outcomes, receivers settled
# by the delivery workers, a delivery a worker ended (a channel's sent and failed), a
# delivered or read item (the counts), the dispatcher's decision and the campaign's
# final status.
_PROGRESS = tuple(
    model.model_fields["type"].default
    for model in (
        ChunkDispatched,
        ReceiversSettled,
        DeliverySent,
        DeliveryFailed,
        BatchCompleted,
        CampaignFinished,
        FeedItemDelivered,
        FeedItemRead,
    )
)
_MARKERS = tuple(f'"{kind}"'.encode() for kind in _PROGRESS)

OPEN_WATCHES = Gauge("clarion_live_watches_open", "Live send watches open on this instance")


class LiveHub:
    """The watches open on this instance, by send.

    Each watch has a queue of one signal: events arriving while one is pending add
    nothing (the watcher reads the newest snapshot anyway), so the hub never waits and
    a slow client only skips intermediate snapshots.

    Unlike the dispatcher's feed hub, its tail is never paused: a tail resumed when the
    first watch opens took up to a second to fetch again, and a campaign sent meanwhile
    came in one fetch (no progress shown before the end). A record costs an idle hub
    one check; the gateway's campaign consumer reads the topic anyway.
    """

    def __init__(self) -> None:
        self._watches: dict[SendKey, set[asyncio.Queue[None]]] = {}

    @property
    def open_watches(self) -> int:
        return sum(len(queues) for queues in self._watches.values())

    @asynccontextmanager
    async def subscribe(self, key: SendKey) -> AsyncIterator[asyncio.Queue[None]]:
        """Signals of ``key``'s events, live once this has entered."""
        queue: asyncio.Queue[None] = asyncio.Queue(1)
        self._watches.setdefault(key, set()).add(queue)
        OPEN_WATCHES.inc()
        try:
            yield queue
        finally:
            OPEN_WATCHES.dec()
            queues = self._watches.get(key)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._watches[key]

    def notify(self, key: SendKey) -> None:
        for queue in self._watches.get(key, ()):
            if not queue.full():
                queue.put_nowait(None)

    def on_status_record(self, value: bytes) -> None:
        """One record of ``clarion.status``: the watchers of its send are woken.

        Runs for every status event of every send: nothing is parsed while nobody
        watches, nor for the events that change no snapshot (a feed item sent)."""
        if not self._watches or not any(marker in value for marker in _MARKERS):
            return
        try:
            event = json.loads(value)
        except ValueError:
            log.warning("live.bad_event", size=len(value))
            return
        if not isinstance(event, dict) or event.get("type") not in _PROGRESS:
            return
        app_id, send_id = event.get("app_id"), event.get("send_id")
        if isinstance(app_id, str) and isinstance(send_id, str):
            self.notify((app_id, send_id))


def status_tail(
    bootstrap_servers: str,
    status_topic: str,
    hub: LiveHub,
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
) -> TopicTail:
    """What feeds ``hub``: this instance's reader of the status topic, from its end."""
    return TopicTail(bootstrap_servers, status_topic, hub.on_status_record, fetch_max_wait_ms)
