"""The tracker settling a batch on the real broker and database: the dispatcher fans a
batch with email and push out (no delivery worker runs here: the test publishes what
the workers would, repeats included, on the status topic), and a ``read_committed``
reader finds each receiver settled, before the batch's one ``BatchCompleted``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref, start_new_groups_at_end, wait_until
from clarion_dispatcher.app import Adapters, Settings, compose
from clarion_dispatcher.testing import CHANNEL_IDS, FakeDirectory, profile, send_command
from clarion_dispatcher.testing.batches import delivery_outcome
from clarion_shared import kafka
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    BatchCompleted,
    ChunkDispatched,
    ReceiversSettled,
    status_event_adapter,
)
from clarion_shared.http import internal_headers
from clarion_shared.settings import InfraSettings
from clarion_shared.tail import TopicTail
from clarion_shared.topics import Topics

pytestmark = pytest.mark.integration

CHANNELS: tuple[ChannelType, ...] = ("email", "push")


class SendEvents:
    """One send's events on the status topic from now on, as ``read_committed``
    readers see them, in the order read."""

    def __init__(self, bootstrap: str, topic: str, send_id: str) -> None:
        self.events: list[AnyStatusEvent] = []
        self._marker = f'"send_id":"{send_id}"'.encode()
        self.tail = TopicTail(bootstrap, topic, self._on_record, fetch_max_wait_ms=20)

    def _on_record(self, body: bytes) -> None:
        if self._marker in body:
            self.events.append(status_event_adapter.validate_json(body))

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


@pytest_asyncio.fixture(loop_scope="session")
async def dispatcher(
    infra_settings: InfraSettings,
    topics: Topics,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[tuple[httpx.AsyncClient, Adapters]]:
    """The dispatcher (fan-out and tracker; its delivery workers are another role), on
    a database of its own, its groups starting at the topics' ends."""
    settings = Settings(
        kafka_bootstrap_servers=infra_settings.kafka_bootstrap_servers,
        mongodb_url=infra_settings.mongodb_url,
        topic_prefix=infra_settings.topic_prefix,
        db_name=random_ref("dispatcher_settle_it").replace("-", "_"),
        group_id=random_ref("dispatcher-settle-it"),
    )
    await start_new_groups_at_end(
        settings.kafka_bootstrap_servers,
        [(kafka.group_id_of(settings.group_id, t), t) for t in (topics.sends, topics.status)],
    )
    adapters = replace(Adapters.connect(settings), directory=FakeDirectory())
    app = compose(settings, adapters)
    headers = internal_headers(settings.internal_token)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://d", headers=headers
            ) as client,
        ):
            yield client, adapters
    finally:
        await mongo_client.drop_database(settings.db_name)


def outcome(app_id: str, batch_id: str, uid: str, channel: ChannelType, ok: bool) -> AnyStatusEvent:
    """What the channel's worker publishes for the receiver's delivery."""
    error = None if ok else ErrorInfo(code=f"ERR_{channel.upper()}", message=f"{channel} refused")
    return delivery_outcome(app_id, batch_id, uid, channel, CHANNEL_IDS[channel], error=error)


async def _found(items: list[Any]) -> list[Any]:
    return items


async def test_a_batch_with_email_and_push_is_settled_then_decided_once(
    dispatcher: tuple[httpx.AsyncClient, Adapters],
    topics: Topics,
    infra_settings: InfraSettings,
) -> None:
    client, adapters = dispatcher
    app_id, batch_id = random_ref("app"), random_ref("bat")
    path = f"/internal/apps/{app_id}/batches/{batch_id}"
    uids = [f"u{n}" for n in range(24)]
    assert isinstance(adapters.directory, FakeDirectory)
    adapters.directory.add(app_id, *(profile(uid) for uid in uids[:-1]))  # one unknown
    parts = [uids[:12], uids[12:]]
    registered = await client.put(
        path, json={"total": 24, "createdAt": 1, "channels": list(CHANNELS), "chunks": parts}
    )
    assert registered.status_code == 200, registered.text
    seen = SendEvents(infra_settings.kafka_bootstrap_servers, topics.status, batch_id)
    await seen.tail.start()
    try:
        for index, part in enumerate(parts):
            command = send_command(
                app_id, batch_id, part, mode="batch", channels=CHANNELS, chunk=index, chunks=2
            ).model_copy(update={"total": 24})
            await kafka.publish(adapters.broker, topics.sends, command, batch_id)
        await wait_until(
            lambda: _found(seen.of(ChunkDispatched)[1:]), timeout_s=60, what="the fan-out"
        )
        shown = (await client.get(path)).json()["data"]
        assert (shown["status"], shown["failed"], shown["pending"]) == ("dispatching", 1, 23)

        # Push fails for everyone; email is sent to all but u0. Some jobs come twice.
        known = uids[:-1]
        worker_events = [outcome(app_id, batch_id, uid, "push", False) for uid in known]
        worker_events += [outcome(app_id, batch_id, uid, "email", uid != "u0") for uid in known]
        worker_events += worker_events[:3] + worker_events[-3:]
        for event in worker_events:
            await kafka.publish(adapters.broker, topics.status, event, batch_id)

        [completed] = await wait_until(
            lambda: _found(seen.of(BatchCompleted)), timeout_s=60, what="the decision"
        )
        await asyncio.sleep(1.0)  # anything said twice would be read by now
    finally:
        await seen.tail.stop()

    assert len(seen.of(BatchCompleted)) == 1
    counts = ("status", "total", "sent", "failed", "pending")
    assert [getattr(completed, name) for name in counts] == ["partially_failed", 24, 22, 2, 0]
    # Each receiver settled, and said so before the completion.
    before = seen.events[: seen.events.index(completed)]
    settled = {
        r.uid: (r.status, r.code)
        for event in before
        if isinstance(event, ReceiversSettled)
        for r in event.receivers
    }
    assert settled == {
        uid: ("failed", "ERR_PUSH") if uid == "u0" else ("sent", None) for uid in known
    }
    assert {event.mode for event in seen.of(ReceiversSettled)} == {"batch"}

    shown = (await client.get(path)).json()["data"]
    assert [shown[name] for name in counts] == ["partially_failed", 24, 22, 2, 0]
    failed = (await client.get(f"{path}/receivers", params={"status": "failed"})).json()
    assert [(r["uid"], r.get("code")) for r in failed["data"]] == [
        ("u0", "ERR_PUSH"),
        ("u23", "ERR_USER_NOT_FOUND"),
    ]
