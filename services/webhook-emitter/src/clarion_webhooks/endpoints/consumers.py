"""Kafka subscribers of webhook endpoints: parse, call one use case."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaMessage
from pydantic import ValidationError

from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.kafka import ConsumerGroups, dead_letter
from clarion_shared.topics import Topics

from .service import EndpointCache, EndpointRepository, apply_webhook_config


def register(
    groups: ConsumerGroups,
    topics: Topics,
    endpoints: EndpointRepository,
    cache: EndpointCache | None = None,
) -> None:
    """Subscribe to the compacted endpoint configuration topic (tombstones delete)."""
    broker = groups.broker
    config_topic = topics.config_webhooks

    @groups.subscriber(config_topic)
    async def on_webhook_config(message: Any) -> None:  # kafka.the_message
        msg: KafkaMessage = message
        raw_key: bytes | None = msg.raw_message.key  # type: ignore[union-attr]
        key = raw_key.decode() if raw_key else ""
        body: bytes = msg.body
        if not body:
            await apply_webhook_config(endpoints, key, None, cache)
            return
        try:
            config = WebhookConfig.model_validate_json(body)
        except ValidationError as exc:
            await dead_letter(broker, config_topic, body, raw_key, f"invalid: {exc}")
            return
        await apply_webhook_config(endpoints, key, config, cache)
