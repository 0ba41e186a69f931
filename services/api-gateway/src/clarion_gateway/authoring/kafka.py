"""This process's side of ``clarion.authoring.changes``: it announces the writes made
here, and reads the topic from its end, with no consumer group (every gateway process
holds a cache of its own, so every process reads every change)."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from prometheus_client import Counter
from pydantic import ValidationError

from clarion_shared import kafka
from clarion_shared.contracts.authoring_changes import AuthoringChanged
from clarion_shared.ids import now
from clarion_shared.logging import get_logger
from clarion_shared.tail import FETCH_MAX_WAIT_MS, TopicTail
from clarion_shared.topics import Topics

from ..kafka import publishing
from .cache import AuthoringCache

log = get_logger(__name__)

INVALIDATIONS = Counter(
    "clarion_authoring_cache_invalidations_total",
    "Apps whose templates or channels a gateway process announced as changed",
)


class KafkaAnnouncer:
    """``service.Announcer`` on Kafka. The cache answers nothing until the reader is
    positioned at the end of the topic (``start``): from then on every change is
    applied, and the cache holds nothing older. ``stop`` closes the cache again. With a
    cache of size 0 (off) nothing is read."""

    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        bootstrap_servers: str,
        cache: AuthoringCache,
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
    ) -> None:
        self._broker = broker
        self._topic = topics.authoring_changes
        self.cache = cache
        self._tail = TopicTail(bootstrap_servers, self._topic, self.on_record, fetch_max_wait_ms)

    async def start(self) -> None:
        if self.cache.size == 0:
            return
        await self._tail.start()
        self.cache.open()

    async def stop(self) -> None:
        self.cache.close()
        await self._tail.stop()

    async def ready(self) -> bool:
        return self.cache.size == 0 or self._tail.ready

    async def announce(self, app_id: str) -> None:
        with publishing():
            await kafka.publish(
                self._broker,
                self._topic,
                AuthoringChanged(app_id=app_id, occurred_at=now()),
                key=app_id,
            )

    def on_record(self, value: bytes) -> None:
        try:
            change = AuthoringChanged.model_validate_json(value)
        except ValidationError as exc:
            # Whichever app it named may have changed: forget them all.
            log.warning("authoring.change_unreadable", size=len(value), error=str(exc)[:200])
            self.cache.clear()
            return
        INVALIDATIONS.inc()
        self.cache.invalidate(change.app_id)
