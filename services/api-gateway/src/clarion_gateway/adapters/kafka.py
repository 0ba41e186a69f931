"""The commands and configuration records the gateway publishes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from faststream.kafka import KafkaBroker

from clarion_shared import kafka, topics
from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.rpc import KafkaRequester


class KafkaCommands:
    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def send(self, command: SendNotification) -> None:
        """A send someone waits for (``reply_to``) takes the realtime lane."""
        topic = topics.SENDS_REALTIME if command.reply_to is not None else topics.SENDS
        await kafka.publish(self._broker, topic, command, key=command.send_id)

    async def send_chunks(self, commands: Sequence[SendNotification]) -> None:
        """Publish the chunks pipelined, then wait for every acknowledgement."""
        await kafka.publish_many(
            self._broker, topics.SENDS, [(command.send_id, command) for command in commands]
        )

    async def channel_config(self, config: ChannelConfig) -> None:
        await kafka.publish(self._broker, topics.CONFIG_CHANNELS, config, key=config.key)


class SendReplies:
    """The realtime reply path: results of this instance's sends on ``clarion.replies``.

    The ``KafkaRequester`` is made in ``start``: aiokafka binds its consumer to the
    running event loop, which ``build`` does not have.
    """

    def __init__(self, bootstrap_servers: str, fetch_max_wait_ms: int = 5) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._requester: KafkaRequester[SendResult] | None = None

    @property
    def ready(self) -> bool:
        return self._requester is not None and self._requester.ready

    async def start(self, timeout_s: float = 30.0) -> None:
        self._requester = KafkaRequester(
            self._bootstrap_servers,
            topics.REPLIES,
            parse=SendResult.model_validate_json,
            request_id_of=lambda result: result.request_id,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await self._requester.start(timeout_s)

    async def stop(self) -> None:
        if self._requester is not None:
            await self._requester.stop()

    async def request(self, send: Callable[[str], Awaitable[None]], timeout_s: float) -> SendResult:
        if self._requester is None:
            raise RuntimeError("the reply consumer is not started")
        return await self._requester.request(send, timeout_s)
