"""The gateway's consumer of ``clarion.webhooks.state``: the endpoint state changes the
webhook-emitter decides (disabled after a 410 or failing too long), applied to the
configuration the gateway owns. One consumer group (``<group id>.<topic>``), so each
change is applied by one gateway process; committed after it is applied."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from faststream.kafka import KafkaBroker
from pydantic import TypeAdapter

from clarion_shared import kafka
from clarion_shared.contracts.webhook_state import WebhookDisabled
from clarion_shared.topics import Topics

from . import outbox
from .service import ConfigPublisher, WebhookRepository, apply_disabled, now_ms

StateHandler = Callable[[WebhookDisabled], Awaitable[None]]

_ADAPTER: TypeAdapter[WebhookDisabled] = TypeAdapter(WebhookDisabled)


class WebhookStates(Protocol):
    """The emitter's endpoint state changes, delivered to one handler."""

    def subscribe(self, handle: StateHandler) -> None:
        """Call ``handle`` with each change; before the broker starts."""
        ...

    async def ready(self) -> bool:
        """The consumer has joined its group."""
        ...


def apply_states(
    states: WebhookStates, webhooks: WebhookRepository, configs: ConfigPublisher
) -> None:
    """Apply each state change to the stored webhook, and publish the result."""
    propagate = outbox.after_write(webhooks, configs)

    async def on_disabled(event: WebhookDisabled) -> None:
        await apply_disabled(webhooks, propagate, event, now_ms())

    states.subscribe(on_disabled)


class KafkaWebhookStates:
    """``WebhookStates`` on Kafka: subscribe before the broker starts."""

    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        group_id: str,
        group_instance_id: str | None = None,
    ) -> None:
        self._groups = kafka.ConsumerGroups(broker, group_id, group_instance_id)
        self._topic = topics.webhooks_state

    def subscribe(self, handle: StateHandler) -> None:
        groups, topic = self._groups, self._topic

        @groups.subscriber(topic)
        async def on_state(message: Any) -> None:  # the KafkaMessage (kafka.the_message)
            await kafka.consume_record(groups.broker, message, topic, _ADAPTER, handle)

    async def ready(self) -> bool:
        return await self._groups.joined()
