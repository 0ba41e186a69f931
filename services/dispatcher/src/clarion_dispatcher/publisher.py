"""Publishing to Kafka, which the fan-out and the feed share: the port and its adapter.

Broker errors (aiokafka's ``KafkaError``) are not wrapped: the consumers' error policy
(``clarion_shared.kafka``) counts them as transient, so a fan-out that could not publish
is redelivered; no use case catches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.base import Contract


class Publisher(Protocol):
    async def publish(self, topic: str, message: Contract, key: str | None) -> None:
        """Publish one record and wait for the broker's acknowledgement."""
        ...

    async def publish_many(
        self, topic: str, messages: Sequence[tuple[str | None, Contract]]
    ) -> None:
        """Publish many records pipelined; return once every one is acknowledged."""
        ...


class BrokerPublisher:
    """Through the shared helpers (pipelined, acknowledged) on the service's broker."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(self, topic: str, message: Contract, key: str | None) -> None:
        await kafka.publish(self._broker, topic, message, key)

    async def publish_many(
        self, topic: str, messages: Sequence[tuple[str | None, Contract]]
    ) -> None:
        if messages:
            await kafka.publish_many(self._broker, topic, messages)
