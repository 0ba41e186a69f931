"""The ``clarion.sends`` consumers: parse a fetch of send commands, call the fan-out."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import TypeAdapter

from clarion_shared import kafka
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.topics import Topics

from ..batches.service import BatchRepository
from ..feed.service import FeedRepository
from ..notifications.service import NotificationRepository
from ..publisher import Publisher
from . import service
from .service import UserDirectory

_SEND_ADAPTER: TypeAdapter[SendNotification] = TypeAdapter(SendNotification)


def register(
    groups: kafka.ConsumerGroups,
    topics: Topics,
    *,
    directory: UserDirectory,
    notifications: NotificationRepository,
    feed: FeedRepository,
    batches: BatchRepository,
    publisher: Publisher,
    max_records: int = 16,
) -> None:
    """Subscribe the fan-out to both send lanes; call before ``broker.start()``.

    Each subscriber takes what one fetch holds (up to ``max_records`` commands) and fans
    it out together, so concurrent sends share lookups, writes and publishes. The two
    lanes are consumed concurrently: realtime sends never wait for a batch's fetch.
    """

    async def handle(commands: Sequence[SendNotification]) -> None:
        await service.dispatch_fetch(
            commands,
            directory=directory,
            notifications=notifications,
            feed=feed,
            batches=batches,
            publisher=publisher,
            topics=topics,
        )

    for topic in (topics.sends_realtime, topics.sends):
        groups.consume_batches(topic, _SEND_ADAPTER, handle, max_records=max_records)
