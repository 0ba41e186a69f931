"""Request/reply over a real Kafka broker.

FastStream's ``broker.request()`` does not work against a real broker, so the reply path
is ours: every instance reads the whole reply topic from its end (no consumer group,
all partitions assigned), and resolves the future registered under the reply's request
id. Replies for other instances are ignored. The caller publishes the request itself
(through ``send``), naming the reply topic and the request id in the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from .ids import new_id
from .logging import get_logger
from .tail import FETCH_MAX_WAIT_MS, TopicTail

log = get_logger(__name__)

R = TypeVar("R")


class KafkaRequester(Generic[R]):
    def __init__(
        self,
        bootstrap_servers: str,
        reply_topic: str,
        parse: Callable[[bytes], R],
        request_id_of: Callable[[R], str],
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
    ) -> None:
        self.reply_topic = reply_topic
        self._parse = parse
        self._request_id_of = request_id_of
        self._pending: dict[str, asyncio.Future[R]] = {}
        self._tail = TopicTail(bootstrap_servers, reply_topic, self._resolve, fetch_max_wait_ms)

    @property
    def ready(self) -> bool:
        return self._tail.ready

    async def start(self, timeout_s: float = 30.0) -> None:
        """Read the reply topic from its end: a reply published after ``start`` returns
        cannot be missed."""
        await self._tail.start(timeout_s)

    async def stop(self) -> None:
        await self._tail.stop()
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

    def _resolve(self, value: bytes) -> None:
        try:
            reply = self._parse(value)
        except Exception as exc:
            log.warning("rpc.bad_reply", topic=self.reply_topic, error=repr(exc))
            return
        future = self._pending.get(self._request_id_of(reply))
        if future is not None and not future.done():
            future.set_result(reply)
