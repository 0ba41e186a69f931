"""The deliveries' Kafka subscriber: ``clarion.status`` → the webhook events it fires →
one delivery per subscribed endpoint, stored and queued before the fetch is committed.

Read committed (``BatchCompleted`` is published in a Kafka transaction). Records that
fire no trigger are not parsed: a send to 10,000 says 10,000 ``notification_created``.
"""

from __future__ import annotations

from collections.abc import Sequence

from clarion_shared.consuming import Positioned
from clarion_shared.contracts.status import AnyStatusEvent, status_event_adapter
from clarion_shared.kafka import ConsumerGroups
from clarion_shared.topics import Topics

from ..endpoints.service import EndpointCache
from ..events.domain import webhook_events
from .service import Queue, deliveries_for

_SILENT = b'"type":"notification_created"'


def fires_a_trigger(body: bytes) -> bool:
    return _SILENT not in body


def register(
    groups: ConsumerGroups,
    topics: Topics,
    endpoints: EndpointCache,
    queue: Queue,
    max_records: int = 1000,
) -> None:
    async def on_status(events: Sequence[Positioned[AnyStatusEvent]]) -> None:
        owed = [w for event in events for w in webhook_events(event.value)]
        if owed:
            await queue.intake(await deliveries_for(endpoints, owed))

    groups.consume_positioned_batches(
        topics.status,
        status_event_adapter,
        on_status,
        wanted=fires_a_trigger,
        isolation_level="read_committed",
        max_records=max_records,
    )
