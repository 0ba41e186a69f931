"""Publishing to Kafka through the shared helpers (pipelined, acknowledged)."""

from __future__ import annotations

from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.base import Contract


class BrokerPublisher:
    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(self, topic: str, message: Contract, key: str | None) -> None:
        await kafka.publish(self._broker, topic, message, key)

    async def publish_many(
        self, topic: str, messages: Sequence[tuple[str | None, Contract]]
    ) -> None:
        if messages:
            await kafka.publish_many(self._broker, topic, messages)
