#!/usr/bin/env python3
"""End-to-end smoke test of the local infrastructure (needs aiokafka, pymongo).

Uses KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL from the environment, e.g.

    eval "$(deploy/local/infra.sh env)" && python deploy/local/smoke.py

Kafka: admin-creates a topic, produces, consumes in a consumer group, commits
offsets, then a second group member joins and the group rebalances.
Mongo: AsyncMongoClient insert/find/delete on FerretDB.
Only the parts whose env variable is set are run. Exit code 0 = all good.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid


async def kafka_smoke(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    group = f"smoke-group-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
        assert topic in await admin.list_topics(), "topic not listed after create"
    finally:
        await admin.close()
    print(f"kafka: created topic {topic} ({time.monotonic() - t0:.2f}s)")

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(20):
            await producer.send_and_wait(topic, f"msg-{i}".encode(), key=f"k{i % 7}".encode())
    finally:
        await producer.stop()
    print(f"kafka: produced 20 messages ({time.monotonic() - t0:.2f}s)")

    common = dict(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )
    c1 = AIOKafkaConsumer(topic, **common)
    await c1.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(got) < 20 and time.monotonic() < deadline:
            batch = await c1.getmany(timeout_ms=1000)
            for msgs in batch.values():
                got.extend(m.value for m in msgs)
        assert len(got) == 20, f"consumed {len(got)} of 20"
        await c1.commit()
        committed = {tp.partition: await c1.committed(tp) for tp in c1.assignment()}
        assert sum(v or 0 for v in committed.values()) == 20, f"committed offsets {committed}"
        print(
            f"kafka: consumed 20 and committed offsets {committed} ({time.monotonic() - t0:.2f}s)"
        )
        assert len(c1.assignment()) == 4

        c2 = AIOKafkaConsumer(topic, **common)
        await c2.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                # both members must keep polling so the rebalance can complete
                await asyncio.gather(c1.getmany(timeout_ms=200), c2.getmany(timeout_ms=200))
                a1, a2 = c1.assignment(), c2.assignment()
                if a1 and a2 and len(a1) + len(a2) == 4 and not (a1 & a2):
                    break
            a1 = sorted(tp.partition for tp in c1.assignment())
            a2 = sorted(tp.partition for tp in c2.assignment())
            assert a1, f"rebalance incomplete: {a1} / {a2}"
            assert a2, f"rebalance incomplete: {a1} / {a2}"
            assert len(a1) + len(a2) == 4, f"rebalance incomplete: {a1} / {a2}"
            print(f"kafka: rebalanced to c1={a1} c2={a2} ({time.monotonic() - t0:.2f}s)")
            # a new message goes to one member; committed offsets survive the rebalance
            await asyncio.sleep(0)
            tp0 = TopicPartition(topic, 0)
            owner = c1 if tp0 in c1.assignment() else c2
            assert (await owner.committed(tp0)) == committed.get(0), "committed offset lost"
        finally:
            await c2.stop()
    finally:
        await c1.stop()

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    print(f"kafka: OK ({time.monotonic() - t0:.2f}s)")


async def mongo_smoke(url: str) -> None:
    from pymongo import AsyncMongoClient

    t0 = time.monotonic()
    client = AsyncMongoClient(url, serverSelectionTimeoutMS=10000)
    try:
        await client.admin.command("ping")
        coll = client["clarion_smoke"][f"c{uuid.uuid4().hex[:8]}"]
        await coll.insert_many(
            [{"_id": f"d{i}", "n": i, "tag": "even" if i % 2 == 0 else "odd"} for i in range(10)]
        )
        docs = await coll.find({"tag": "odd"}).sort("n", -1).to_list()
        assert [d["n"] for d in docs] == [9, 7, 5, 3, 1], docs
        one = await coll.find_one({"_id": "d4"})
        assert one is not None
        assert one["n"] == 4
        res = await coll.update_one({"_id": "d4"}, {"$set": {"tag": "x"}})
        assert res.modified_count == 1
        await coll.drop()
        info = await client.admin.command("buildInfo")
        print(
            f"mongo: OK, server {info.get('version')} "
            f"ferretdb={info.get('ferretdbVersion')} ({time.monotonic() - t0:.2f}s)"
        )
    finally:
        await client.close()


async def main() -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    url = os.environ.get("MONGODB_URL")
    if not bootstrap and not url:
        print("set KAFKA_BOOTSTRAP_SERVERS and/or MONGODB_URL", file=sys.stderr)
        return 2
    if bootstrap:
        await kafka_smoke(bootstrap)
    if url:
        await mongo_smoke(url)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
