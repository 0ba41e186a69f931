"""The tracker: a consumer group of the dispatcher on ``clarion.status``.

It reads committed records only (``read_committed``: its own aborted attempts never
count), and only the events it acts on are parsed (a 10,000-receiver batch says
~20,000 other things on this topic): chunks dispatched, feed items delivered, and the
delivery workers' outcomes of a batch's or campaign's deliveries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import ConsumerRebalanceListener

from clarion_shared import kafka
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    ChunkDispatched,
    DeliveryFailed,
    DeliverySent,
    FeedItemDelivered,
    status_event_adapter,
)
from clarion_shared.topics import Topics

from . import service
from .service import Announcer, BatchRepository


def _type_marker(model: type[AnyStatusEvent]) -> bytes:
    return f'"type":"{model.model_fields["type"].default}"'.encode()


_TRACKED = tuple(_type_marker(model) for model in (ChunkDispatched, FeedItemDelivered))
# A delivery's outcome matters for a batch's or campaign's delivery by a worker only
# (the realtime ones are most of them, and a failure at the fan-out names no channel).
_DELIVERIES = tuple(_type_marker(model) for model in (DeliverySent, DeliveryFailed))
_TRACKED_MODES = (b'"mode":"batch"', b'"mode":"campaign"')
_NO_CHANNEL = b'"channel_id":null'


def tracked(body: bytes) -> bool:
    """Whether a status record may be one the tracker acts on (the rest is skipped
    unparsed; a false positive is parsed and ignored)."""
    if any(marker in body for marker in _TRACKED):
        return True
    return (
        any(marker in body for marker in _DELIVERIES)
        and any(mode in body for mode in _TRACKED_MODES)
        and _NO_CHANNEL not in body
    )


class Handoff(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions change hands between fetches only: a revocation waits for the fetch
    being handled (and its transaction) to end, and a fetch handled after its
    partition was revoked is left to the partition's next owner. So two instances never
    decide, and announce, from the same record."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._revoked: set[tuple[str, int]] = set()

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        async with self._lock:
            self._revoked |= {(tp.topic, tp.partition) for tp in revoked}

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        async with self._lock:
            self._revoked -= {(tp.topic, tp.partition) for tp in assigned}

    @asynccontextmanager
    async def holding(
        self, events: Sequence[kafka.Positioned[AnyStatusEvent]]
    ) -> AsyncIterator[list[kafka.Positioned[AnyStatusEvent]]]:
        """The events of partitions still this instance's, while no revocation runs."""
        async with self._lock:
            yield [e for e in events if (e.topic, e.partition) not in self._revoked]


def register(
    groups: kafka.ConsumerGroups,
    topics: Topics,
    *,
    batches: BatchRepository,
    announcer: Announcer,
    max_records: int = 500,
) -> None:
    """Subscribe the tracker to the status topic; call before ``broker.start()``."""
    handoff = Handoff()

    async def handle(events: Sequence[kafka.Positioned[AnyStatusEvent]]) -> None:
        async with handoff.holding(events) as owned:
            if owned:
                await service.track(owned, batches=batches, announcer=announcer)

    groups.consume_positioned_batches(
        topics.status,
        status_event_adapter,
        handle,
        wanted=tracked,
        listener=handoff,
        isolation_level="read_committed",
        max_records=max_records,
    )
