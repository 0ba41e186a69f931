"""What the gateway's Kafka publishers share: one broker connection and their error.

The publishers of sends and of channel configurations publish on one broker, started
and stopped once. A broker that does not take a record is :class:`PublishFailed`, the
publishers' own error: use cases catch that, never aiokafka's errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker

from clarion_shared import kafka


class PublishFailed(Exception):
    """The broker did not take the record (told apart from a reply that is late)."""


@contextmanager
def publishing() -> Iterator[None]:
    """Turns the broker's errors (a timeout included) into :class:`PublishFailed`."""
    try:
        yield
    except (KafkaError, TimeoutError) as exc:
        raise PublishFailed(repr(exc)) from exc


class BrokerConnection:
    """The broker the publishers share: started and stopped once, pinged by /readyz."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker
        self._ready = kafka.readiness(broker)

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()

    async def ready(self) -> bool:
        return await self._ready()
