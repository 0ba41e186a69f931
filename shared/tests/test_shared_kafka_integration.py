"""The shared Kafka plumbing against the real broker: topics, request/reply, DLQ."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import TypeAdapter

from clarion_devtools.helpers import random_ref, start_new_groups_at_end, wait_until
from clarion_shared.contracts.replies import SendResult
from clarion_shared.kafka import (
    ConsumerGroups,
    consume_record,
    make_broker,
    publish,
)
from clarion_shared.rpc import KafkaRequester
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics, ensure_topics

pytestmark = pytest.mark.integration


async def test_topics_exist_and_creation_is_idempotent(
    infra_settings: InfraSettings, topics: Topics
) -> None:
    assert await ensure_topics(infra_settings, topics) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=infra_settings.kafka_bootstrap_servers)
    await admin.start()
    wanted = set(topics.all_names())
    try:
        # The broker's topic listing can trail a creation on a loaded machine (CI once
        # missed the five created last): it must show every topic, soon.
        async def listed() -> set[str] | None:
            missing = wanted - set(await admin.list_topics())
            return None if missing else wanted

        await wait_until(listed, timeout_s=30.0, interval_s=0.5, what="every topic listed")
    finally:
        await admin.close()


async def test_request_reply_over_the_real_broker(
    infra_settings: InfraSettings, topics: Topics
) -> None:
    replies_topic = topics.replies
    broker = make_broker(infra_settings, random_ref("rpc"))
    await broker.start()
    requester: KafkaRequester[SendResult] = KafkaRequester(
        infra_settings.kafka_bootstrap_servers,
        replies_topic,
        SendResult.model_validate_json,
        lambda reply: reply.request_id,
    )
    await requester.start()
    try:

        async def send(request_id: str) -> None:
            # Another instance's reply first: it must be ignored, not delivered to us.
            other = SendResult(request_id="someone-else", send_id="x")
            await publish(broker, replies_topic, other, key="someone-else")
            await publish(
                broker,
                replies_topic,
                SendResult(request_id=request_id, send_id="s1"),
                key=request_id,
            )

        replies = await asyncio.gather(*(requester.request(send, 10) for _ in range(5)))
        assert all(reply.send_id == "s1" for reply in replies)
        assert len({reply.request_id for reply in replies}) == 5

        async def never(_: str) -> None:
            return None

        with pytest.raises(TimeoutError):
            await requester.request(never, 0.3)
    finally:
        await requester.stop()
        await broker.stop()


async def test_poison_record_goes_to_the_dlq_and_does_not_block(
    infra_settings: InfraSettings,
) -> None:
    topic = f"clarion.test.{random_ref('dlq')}"
    await _create_topics(infra_settings, topic, f"{topic}.dlq")
    group_id = random_ref("dlq-group")
    marker = random_ref("marker")
    handled: list[Any] = []
    broker = make_broker(infra_settings, group_id)
    group = ConsumerGroups(broker, group_id)
    adapter = TypeAdapter(SendResult)

    @group.subscriber(topic, auto_offset_reset="latest")
    async def on_record(msg: Any) -> None:  # the KafkaMessage (kafka.the_message)
        async def handle(result: SendResult) -> None:
            if result.request_id == marker:
                handled.append(result)

        await consume_record(broker, msg, topic, adapter, handle)

    dlq = AIOKafkaConsumer(
        f"{topic}.dlq",
        bootstrap_servers=infra_settings.kafka_bootstrap_servers,
        auto_offset_reset="latest",
        group_id=None,
    )
    await dlq.start()
    await broker.start()
    try:
        await dlq.seek_to_end()
        await wait_until(group.joined, timeout_s=30, what="the group join")
        poison = f'{{"not": "a send result", "marker": "{marker}"}}'.encode()
        await broker.publish(poison, topic, key=marker.encode())
        good = SendResult(request_id=marker, send_id="after-poison")
        await publish(broker, topic, good, key=marker)
        await wait_until(lambda: _async(handled), timeout_s=30, what="the good record")
        found: list[Any] = []

        async def dead_lettered() -> bool:
            batch = await dlq.getmany(timeout_ms=500)
            for records in batch.values():
                found.extend(r for r in records if r.value == poison)
            return bool(found)

        await wait_until(dead_lettered, timeout_s=30, what="the poison record in the DLQ")
        headers = dict(found[0].headers)
        assert headers["dlq-source-topic"] == topic.encode()
        assert b"invalid message" in headers["dlq-reason"]
    finally:
        await broker.stop()
        await dlq.stop()


MEMBER_SCRIPT = """
import asyncio, sys
from clarion_shared.kafka import ConsumerGroups, make_broker
from clarion_shared.settings import InfraSettings

async def main(topic, group_id, instance):
    broker = make_broker(InfraSettings(kafka_bootstrap_servers=sys.argv[4]), group_id)
    group = ConsumerGroups(broker, group_id, instance or None)

    @group.subscriber(topic, session_timeout_ms=60_000, heartbeat_interval_ms=3_000)
    async def on_record(body: bytes) -> None:
        pass

    await broker.start()
    while not await group.joined():
        await asyncio.sleep(0.05)
    print("joined", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(*sys.argv[1:4]))
"""


async def test_a_killed_static_member_restarted_under_its_name_consumes_at_once(
    infra_settings: InfraSettings,
) -> None:
    """SIGKILL a member, start it again under the same name: its partitions come back.

    The session is 60 s: a dynamic member would wait for the dead one's session to
    expire, longer than this test waits (set ``instance`` to "" to see it fail).
    """
    instance = "worker-0"
    topic = f"clarion.test.{random_ref('static')}"
    await _create_topics(infra_settings, topic, partitions=2)
    group_id = random_ref("static-group")
    bootstrap = infra_settings.kafka_bootstrap_servers
    crashed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        MEMBER_SCRIPT,
        topic,
        group_id,
        instance,
        bootstrap,
        stdout=asyncio.subprocess.PIPE,
    )
    assert crashed.stdout is not None
    line = await asyncio.wait_for(crashed.stdout.readline(), 60)
    assert line.strip() == b"joined"
    crashed.kill()
    await crashed.wait()

    received: list[bytes] = []
    broker = make_broker(infra_settings, group_id)
    group = ConsumerGroups(broker, group_id, instance or None)

    @group.subscriber(topic, session_timeout_ms=60_000, heartbeat_interval_ms=3_000)
    async def on_record(msg: Any) -> None:  # the KafkaMessage (kafka.the_message)
        received.append(msg.body)

    try:
        # The join happens inside start(); a dynamic member would block here for 60 s.
        await asyncio.wait_for(broker.start(), 30)
        for partition in (0, 1):
            await broker.publish(f"p{partition}".encode(), topic, partition=partition)

        async def both() -> bool:
            return len(received) == 2

        await wait_until(both, timeout_s=30, what="a record from each partition")
        assert sorted(received) == [b"p0", b"p1"]
    finally:
        await broker.stop()


async def test_new_groups_start_at_the_end_and_old_ones_keep_their_offsets(
    infra_settings: InfraSettings,
) -> None:
    bootstrap = infra_settings.kafka_bootstrap_servers
    topic = f"clarion.test.{random_ref('fresh')}"
    await _create_topics(infra_settings, topic, partitions=2)
    prefix = random_ref("fresh")
    group_id = f"{prefix}.{topic}"
    producer = make_broker(infra_settings, prefix)
    await producer.start()
    try:
        for partition in (0, 1):
            await producer.publish(b"before", topic, partition=partition)
        assert await start_new_groups_at_end(bootstrap, [(group_id, topic)]) == 2
        await producer.publish(b"after", topic, partition=1)
        # The group has offsets now: a second call leaves them where they are.
        assert await start_new_groups_at_end(bootstrap, [(group_id, topic)]) == 0

        received: list[bytes] = []
        broker = make_broker(infra_settings, prefix)
        groups = ConsumerGroups(broker, prefix)
        assert groups.group_id(topic) == group_id

        @groups.subscriber(topic)  # earliest, were the group new
        async def on_record(msg: Any) -> None:  # the KafkaMessage (kafka.the_message)
            received.append(msg.body)

        await broker.start()
        try:

            async def got_one() -> bool:
                return bool(received)

            await wait_until(got_one, timeout_s=30, what="the record sent after")
            await producer.publish(b"last", topic, partition=0)

            async def got_two() -> bool:
                return len(received) == 2

            await wait_until(got_two, timeout_s=30, what="the last record")
            assert received == [b"after", b"last"]
        finally:
            await broker.stop()
    finally:
        await producer.stop()


async def _create_topics(settings: InfraSettings, *names: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


async def _async(value: list[Any]) -> bool:
    return bool(value)
