"""The counter: a consumer group of the dispatcher's own on ``clarion.status``
(``<group id>-analytics.<topic>``), apart from the tracker's, so that counting never
holds up a batch's decision, nor the other way round.

It reads uncommitted records too: the only transactional event on the topic is
``BatchCompleted``, which it does not count, and ``read_committed`` would make it wait
for a tracker's open transaction. Only the events it counts are parsed.
"""

from __future__ import annotations

from collections.abc import Sequence

from clarion_shared import kafka
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    ChunkDispatched,
    DeliveryFailed,
    DeliverySent,
    FeedItemDelivered,
    FeedItemEngaged,
    FeedItemRead,
    FeedItemSent,
    status_event_adapter,
)
from clarion_shared.ids import now
from clarion_shared.lifecycle import Periodic
from clarion_shared.topics import Topics

from . import service
from .service import AnalyticsRepository

_COUNTED = tuple(
    f'"type":"{model.model_fields["type"].default}"'.encode()
    for model in (
        FeedItemSent,
        FeedItemDelivered,
        FeedItemRead,
        FeedItemEngaged,
        DeliverySent,
        DeliveryFailed,
        ChunkDispatched,
    )
)


def counted(body: bytes) -> bool:
    """Whether a status record may be one analytics counts (a false positive is parsed
    and adds nothing)."""
    return any(marker in body for marker in _COUNTED)


def register(
    groups: kafka.ConsumerGroups,
    topics: Topics,
    *,
    repo: AnalyticsRepository,
    max_records: int = 500,
) -> None:
    """Subscribe the counter to the status topic; call before ``broker.start()``.
    ``groups`` is the counter's own (its prefix names its consumer group)."""

    async def handle(events: Sequence[kafka.Positioned[AnyStatusEvent]]) -> None:
        await service.count([e.value for e in events], repo=repo, now=now())

    # Positioned only for ``wanted``: the rest is skipped unparsed.
    groups.consume_positioned_batches(
        topics.status, status_event_adapter, handle, wanted=counted, max_records=max_records
    )


class AnalyticsSweep(Periodic):
    """Finishes what a crash left half counted, and forgets old marks, every
    ``interval_s`` (and once at start)."""

    def __init__(
        self, repo: AnalyticsRepository, interval_s: float, grace_s: int, keep_days: int
    ) -> None:
        super().__init__(interval_s, "analytics.sweep_failed")
        self._repo = repo
        self._grace_s = grace_s
        self._keep_days = keep_days

    async def tick(self) -> int:
        return await service.sweep(
            self._repo, now=now(), grace_s=self._grace_s, keep_days=self._keep_days
        )
