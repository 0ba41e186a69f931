"""What the directory publishes: the user events of its HTTP API
(``clarion.users.events``), as other services announce theirs, and which users each
write call changed (``clarion.users.changes``)."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.users_changes import UsersChanged
from clarion_shared.contracts.users_events import PresenceChanged
from clarion_shared.topics import Topics

from .announcements import PublishFailed


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


class KafkaUserChanges:
    """``UserChanges`` on the broker: keyed by app id (the topic's key, as the registry
    names it)."""

    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._topic = topics.users_changes

    async def users_changed(self, changes: Sequence[UsersChanged]) -> None:
        try:
            await kafka.publish_many(self._broker, self._topic, [(c.app_id, c) for c in changes])
        except (KafkaError, TimeoutError) as exc:
            raise PublishFailed(repr(exc)) from exc
