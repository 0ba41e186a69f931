"""Request/reply over a real Kafka broker.

FastStream's ``broker.request()`` does not work against a real broker, so the reply path
is ours: every instance reads the whole reply topic from its end (no consumer group,
all partitions assigned), and resolves the future registered under the reply's request
id. Replies for other instances are ignored. The caller publishes the request itself
(through ``send``), naming the reply topic and the request id in the message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from .ids import new_id
from .kafka import topic_partitions
from .logging import get_logger

log = get_logger(__name__)

R = TypeVar("R")


class KafkaRequester(Generic[R]):
    def __init__(
        self,
        bootstrap_servers: str,
        reply_topic: str,
        parse: Callable[[bytes], R],
        request_id_of: Callable[[R], str],
        fetch_max_wait_ms: int = 5,
    ) -> None:
        self.reply_topic = reply_topic
        self._parse = parse
        self._request_id_of = request_id_of
        self._bootstrap_servers = bootstrap_servers
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None  # made in start(): needs the loop
        self._pending: dict[str, asyncio.Future[R]] = {}
        self._task: asyncio.Task[None] | None = None
        self.ready = False

    async def start(self, timeout_s: float = 30.0) -> None:
        """Assign every partition of the reply topic and fix positions at its end.

        Positions are fixed before ``start`` returns, so a reply published after it
        cannot be missed.
        """
        partitions = await topic_partitions(self._bootstrap_servers, self.reply_topic, timeout_s)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await consumer.start()
        tps = [TopicPartition(self.reply_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name=f"replies:{self.reply_topic}")
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()

    async def request(self, send: Callable[[str], Awaitable[None]], timeout_s: float) -> R:
        """Call ``send(request_id)`` and wait up to ``timeout_s`` for the reply.

        Raises ``TimeoutError`` when no reply comes in time.
        """
        request_id = new_id("req_")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await send(request_id)
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._pending.pop(request_id, None)

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("rpc.fetch_failed", topic=self.reply_topic, error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                for record in records:
                    self._resolve(record.value)

    def _resolve(self, value: bytes | None) -> None:
        if not value:
            return
        try:
            reply = self._parse(value)
        except Exception as exc:
            log.warning("rpc.bad_reply", topic=self.reply_topic, error=repr(exc))
            return
        future = self._pending.get(self._request_id_of(reply))
        if future is not None and not future.done():
            future.set_result(reply)
