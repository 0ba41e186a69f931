"""What the deliveries publish: endpoint state changes (``clarion.webhooks.state``),
which the gateway applies to the configuration it owns."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.webhook_state import WebhookDisabled
from clarion_shared.topics import Topics


class KafkaStatePublisher:
    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._topic = topics.webhooks_state

    async def webhook_disabled(self, event: WebhookDisabled) -> None:
        await kafka.publish(self._broker, self._topic, event, key=event.key)
