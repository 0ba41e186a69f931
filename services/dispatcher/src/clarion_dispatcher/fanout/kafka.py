"""Client of the user-directory: resolve uids over Kafka (request/reply)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.directory_lookups import MAX_LOOKUP_UIDS, LookupUsers
from clarion_shared.contracts.directory_replies import UserProfile, UsersResolved
from clarion_shared.rpc import KafkaRequester
from clarion_shared.tail import FETCH_MAX_WAIT_MS
from clarion_shared.topics import Topics

from .service import DirectoryTimedOut


def _request_id(reply: UsersResolved) -> str:
    return reply.request_id


class KafkaDirectoryClient:
    """Looks uids up in chunks of ``MAX_LOOKUP_UIDS``, all chunks at once.

    Lookups go to ``topics.directory_lookups`` (``directory_lookups_realtime`` for
    realtime sends); replies come back on ``topics.directory_replies``. The reply
    consumer is created in ``start`` (aiokafka needs the running loop).
    """

    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        *,
        bootstrap_servers: str,
        timeout_s: float,
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
    ) -> None:
        self._broker = broker
        self._lookups = topics.directory_lookups
        self._lookups_realtime = topics.directory_lookups_realtime
        self._reply_topic = topics.directory_replies
        self._bootstrap_servers = bootstrap_servers
        self._timeout_s = timeout_s
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._requester: KafkaRequester[UsersResolved] | None = None

    async def ready(self) -> bool:
        return self._requester is not None and self._requester.ready

    async def start(self) -> None:
        requester = KafkaRequester(
            self._bootstrap_servers,
            self._reply_topic,
            UsersResolved.model_validate_json,
            _request_id,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await requester.start()
        self._requester = requester

    async def stop(self) -> None:
        if self._requester is not None:
            await self._requester.stop()
            self._requester = None

    async def resolve(
        self, app_id: str, uids: Sequence[str], *, realtime: bool = False
    ) -> Mapping[str, UserProfile]:
        """Profiles of the uids that exist. Raises ``DirectoryTimedOut`` if a chunk goes
        unanswered.

        ``realtime`` lookups go on their own topic, ahead of any batch's lookups.
        """
        topic = self._lookups_realtime if realtime else self._lookups
        chunks = [uids[i : i + MAX_LOOKUP_UIDS] for i in range(0, len(uids), MAX_LOOKUP_UIDS)]
        replies = await asyncio.gather(*(self._lookup(topic, app_id, chunk) for chunk in chunks))
        wanted = set(uids)
        return {user.uid: user for reply in replies for user in reply.users if user.uid in wanted}

    async def _lookup(self, topic: str, app_id: str, uids: Sequence[str]) -> UsersResolved:
        requester = self._requester
        if requester is None:
            raise RuntimeError("the directory client is not started")

        async def send(request_id: str) -> None:
            lookup = LookupUsers(
                request_id=request_id,
                reply_topic=self._reply_topic,
                app_id=app_id,
                uids=list(uids),
            )
            # Keyed by request: one app's lookups spread over the directory's processes.
            await kafka.publish(self._broker, topic, lookup, key=request_id)

        try:
            return await requester.request(send, self._timeout_s)
        except TimeoutError as exc:
            raise DirectoryTimedOut(
                f"no answer to a lookup of {len(uids)} uid(s) within {self._timeout_s}s"
            ) from exc
