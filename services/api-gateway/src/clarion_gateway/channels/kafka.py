"""The channel configurations the gateway publishes (compacted ``clarion.config.channels``)."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.topics import Topics

from ..kafka import publishing


class KafkaChannelConfigs:
    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._topic = topics.config_channels

    async def channel_config(self, config: ChannelConfig) -> None:
        with publishing():
            await kafka.publish(self._broker, self._topic, config, key=config.key)
