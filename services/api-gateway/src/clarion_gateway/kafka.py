"""What the gateway's Kafka publishers share: their error.

The publishers of sends and of channel configurations publish on one broker
(``clarion_shared.kafka.BrokerConnection``, started and stopped once). A broker that
does not take a record is :class:`PublishFailed`, the publishers' own error: use cases
catch that, never aiokafka's errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.errors import KafkaError


class PublishFailed(Exception):
    """The broker did not take the record (told apart from a reply that is late)."""


@contextmanager
def publishing() -> Iterator[None]:
    """Turns the broker's errors (a timeout included) into :class:`PublishFailed`."""
    try:
        yield
    except (KafkaError, TimeoutError) as exc:
        raise PublishFailed(repr(exc)) from exc
