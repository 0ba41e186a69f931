"""The user events the directory publishes (``clarion.users.events``): what its HTTP
API changed that other services follow, as they announce theirs."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.users_events import PresenceChanged
from clarion_shared.topics import Topics

from .service import PublishFailed


class KafkaUserEvents:
    """``UserEvents`` on the broker: keyed ``app_id:uid``, so one user's events stay in
    order (the topic's key, as the registry names it)."""

    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._topic = topics.users_events

    async def presence_changed(self, events: Sequence[PresenceChanged]) -> None:
        try:
            await kafka.publish_many(
                self._broker, self._topic, [(f"{e.app_id}:{e.uid}", e) for e in events]
            )
        except (KafkaError, TimeoutError) as exc:
            raise PublishFailed(repr(exc)) from exc
