"""Batches (and campaigns) through their use cases on the in-memory adapters, with a
status topic of one partition: register a send as the gateway does, fan its chunks
out, mark feed items delivered as the feed route does, and track what the tracker
reads. The unit tests of batches and of campaigns share it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from clarion_shared.contracts.sends import ChannelType, SendNotification
from clarion_shared.contracts.status import AnyStatusEvent, status_event_adapter
from clarion_shared.kafka import Positioned
from clarion_shared.topics import Topics

from ..batches import service
from ..batches.models import BatchMode, BatchRegistration
from ..fanout import service as fanout
from ..feed import service as feed_service
from . import FakeDirectory, InMemoryNotifications, RecordingPublisher, send_command
from .batches import InMemoryBatches, RecordingAnnouncer
from .feed import InMemoryFeed

APP = "app1"
TOPICS = Topics("unit.")
NOW = 1_700_000_000


@dataclass
class BatchWorld:
    directory: FakeDirectory = field(default_factory=FakeDirectory)
    notifications: InMemoryNotifications = field(default_factory=InMemoryNotifications)
    feed: InMemoryFeed = field(default_factory=InMemoryFeed)
    batches: InMemoryBatches = field(default_factory=InMemoryBatches)
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    announcer: RecordingAnnouncer = field(default_factory=RecordingAnnouncer)
    offset: int = 0  # the status topic's next offset

    @property
    def status(self) -> str:
        return TOPICS.status

    async def register(
        self,
        send_id: str,
        *chunks: list[str],
        mode: BatchMode | None = None,
        channels: Sequence[ChannelType] = ("in_app",),
    ) -> list[SendNotification]:
        """Register the send as the gateway does (without ``mode`` when None: the
        registration of a gateway that predates campaigns); its chunks' commands."""
        total = sum(len(c) for c in chunks)
        body = BatchRegistration(
            total=total, created_at=NOW, channels=list(channels), chunks=[*chunks]
        )
        if mode is not None:
            body = body.model_copy(update={"mode": mode})
        await service.register_batch(APP, send_id, body, batches=self.batches)
        return self.commands(send_id, *chunks, mode=mode or "batch", channels=channels)

    def commands(
        self,
        send_id: str,
        *chunks: list[str],
        mode: BatchMode = "batch",
        channels: Sequence[ChannelType] = ("in_app",),
    ) -> list[SendNotification]:
        """The chunks' send commands, as the gateway publishes them."""
        total = sum(len(c) for c in chunks)
        return [
            send_command(
                APP,
                send_id,
                part,
                mode=mode,
                channels=tuple(channels),
                chunk=i,
                chunks=len(chunks),
            ).model_copy(update={"total": total})
            for i, part in enumerate(chunks)
        ]

    async def dispatch(self, command: SendNotification) -> list[Positioned[AnyStatusEvent]]:
        """Fan one chunk out; its status events as the tracker reads them."""
        before = len(self.publisher.on(self.status))
        await fanout.dispatch_chunk(
            command,
            directory=self.directory,
            notifications=self.notifications,
            feed=self.feed,
            batches=self.batches,
            publisher=self.publisher,
            topics=TOPICS,
            now=NOW + 1,
        )
        return self._published_since(before)

    async def deliver(self, uid: str) -> list[Positioned[AnyStatusEvent]]:
        """The receiver's feed item marked delivered, as the feed route does it."""
        [item] = [item for item in self.feed.items.values() if item.receiver == uid]
        before = len(self.publisher.on(self.status))
        await feed_service.mark_delivered(
            APP, uid, item.id, feed=self.feed, publisher=self.publisher, status_topic=self.status
        )
        return self._published_since(before)

    def read(self, event: AnyStatusEvent) -> Positioned[AnyStatusEvent]:
        """``event`` read at the topic's next offset (a republished copy, say)."""
        self.offset += 1
        return Positioned(event, self.status, 0, self.offset - 1)

    async def track(self, events: list[Positioned[AnyStatusEvent]]) -> None:
        await service.track(events, batches=self.batches, announcer=self.announcer, now=NOW + 9)

    def _published_since(self, before: int) -> list[Positioned[AnyStatusEvent]]:
        return [
            self.read(status_event_adapter.validate_python(published.message))
            for published in self.publisher.on(self.status)[before:]
        ]
