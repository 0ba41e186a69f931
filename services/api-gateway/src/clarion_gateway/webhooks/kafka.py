"""The webhook configurations the gateway publishes (compacted ``clarion.config.webhooks``,
keyed ``app_id:webhook_id``; a tombstone deletes)."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.topics import Topics

from ..kafka import publishing


class KafkaWebhookConfigs:
    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._topic = topics.config_webhooks

    async def webhook_config(self, config: WebhookConfig) -> None:
        with publishing():
            await kafka.publish(self._broker, self._topic, config, key=config.key)

    async def webhook_deleted(self, key: str) -> None:
        with publishing():
            await kafka.publish(self._broker, self._topic, None, key=key)
