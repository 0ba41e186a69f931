"""The send commands the gateway publishes, and the realtime reply path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.rpc import KafkaRequester
from clarion_shared.tail import FETCH_MAX_WAIT_MS
from clarion_shared.topics import Topics

from ..kafka import publishing


class KafkaSends:
    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._sends = topics.sends
        self._sends_realtime = topics.sends_realtime

    async def send(self, command: SendNotification) -> None:
        """A send someone waits for (``reply_to``) takes the realtime lane."""
        topic = self._sends_realtime if command.reply_to is not None else self._sends
        with publishing():
            await kafka.publish(self._broker, topic, command, key=command.send_id)

    async def send_chunks(self, commands: Sequence[SendNotification]) -> None:
        """Publish the chunks pipelined, then wait for every acknowledgement.

        Keyed ``<batch id>:<chunk>``: a batch's chunks spread over the partitions, so N
        dispatchers share one batch (the batch tracker, not their order, tells when the
        batch is done)."""
        with publishing():
            await kafka.publish_many(
                self._broker,
                self._sends,
                [(chunk_key(command), command) for command in commands],
            )


def chunk_key(command: SendNotification) -> str:
    return f"{command.send_id}:{command.chunk}"


class SendReplies:
    """The realtime reply path: results of this instance's sends on ``clarion.replies``.

    The ``KafkaRequester`` is made in ``start``: aiokafka binds its consumer to the
    running event loop, which ``compose`` does not have.
    """

    def __init__(
        self, bootstrap_servers: str, reply_topic: str, fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._reply_topic = reply_topic
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._requester: KafkaRequester[SendResult] | None = None

    @property
    def ready(self) -> bool:
        return self._requester is not None and self._requester.ready

    async def start(self, timeout_s: float = 30.0) -> None:
        self._requester = KafkaRequester(
            self._bootstrap_servers,
            self._reply_topic,
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
