"""The deliveries' Kafka subscriber: ``clarion.status`` → the webhook events it fires →
one delivery per subscribed endpoint, stored and queued before the fetch is committed.

Read committed (``BatchCompleted`` is published in a Kafka transaction). Records that
fire no trigger are not parsed: a send to 10,000 says 10,000 ``notification_created``
(and, by email, 10,000 ``delivery_sent``).
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
# A worker's send fires a trigger on a push channel only (10,000 emails say 10,000).
_SENT = b'"type":"delivery_sent"'
_PUSH = b'"channel_type":"push"'


def fires_a_trigger(body: bytes) -> bool:
    """Whether a status record may fire a trigger (a false positive is parsed and
    fires nothing)."""
    return _SILENT not in body and (_SENT not in body or _PUSH in body)


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
