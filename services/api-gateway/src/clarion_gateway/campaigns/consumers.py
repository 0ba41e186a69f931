"""The gateway's consumer of ``clarion.status`` for campaign progress: one consumer group
(``<group id>.<topic>``), so each event is applied by one gateway process. Only the
campaign events progress reads are parsed: a send to 10,000 says ~20,000 other things
on this topic (each receiver's creation and feed item), which it never looks at. The
workers' ``DeliverySent`` and ``DeliveryFailed`` are read: each moves a channel's
queued delivery to sent or failed."""

from __future__ import annotations

from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.status import AnyStatusEvent, status_event_adapter
from clarion_shared.topics import Topics

from .progress import StatusHandler

_CAMPAIGN = b'"mode":"campaign"'
_READ = tuple(
    f'"type":"{kind}"'.encode()
    for kind in (
        "chunk_dispatched",
        "receivers_settled",
        "batch_completed",
        "feed_item_delivered",
        "feed_item_read",
        "delivery_sent",
        "delivery_failed",
    )
)


def campaign_event(body: bytes) -> bool:
    """Whether a status record may be a campaign's event that progress reads (a false
    positive is parsed and ignored)."""
    return _CAMPAIGN in body and any(kind in body for kind in _READ)


class KafkaCampaignEvents:
    """``progress.CampaignEvents`` on Kafka: subscribe before the broker starts."""

    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        group_id: str,
        group_instance_id: str | None = None,
        max_records: int = 500,
    ) -> None:
        self._groups = kafka.ConsumerGroups(broker, group_id, group_instance_id)
        self._topic = topics.status
        self._max_records = max_records

    def subscribe(self, handle: StatusHandler) -> None:
        async def on_events(events: Sequence[kafka.Positioned[AnyStatusEvent]]) -> None:
            await handle([e.value for e in events])

        self._groups.consume_positioned_batches(
            self._topic,
            status_event_adapter,
            on_events,
            wanted=campaign_event,
            # BatchCompleted is published in a Kafka transaction.
            isolation_level="read_committed",
            max_records=self._max_records,
        )

    async def ready(self) -> bool:
        return await self._groups.joined()
