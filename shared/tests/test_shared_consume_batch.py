"""The house consumer policy on FastStream's in-memory broker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker
from pydantic import TypeAdapter

from clarion_shared.contracts.replies import SendResult
from clarion_shared.kafka import BATCH_FETCH_WAIT_MS, ConsumerGroups, consume_batch, publish

TOPIC = "clarion.test.batch"


async def test_a_failing_record_is_isolated_and_dead_lettered_alone() -> None:
    broker = KafkaBroker()
    handled: list[list[str]] = []
    dead: list[bytes] = []

    async def handle_many(results: Sequence[SendResult]) -> None:
        if any(r.request_id == "poison" for r in results):
            raise ValueError("cannot handle poison")
        handled.append([r.request_id for r in results])

    @ConsumerGroups(broker, "g").subscriber(TOPIC, batch=True)
    async def on_batch(msg: KafkaMessage) -> None:
        await consume_batch(broker, msg, TOPIC, TypeAdapter(SendResult), handle_many, attempts=1)

    @broker.subscriber(f"{TOPIC}.dlq")
    async def on_dead(msg: KafkaMessage) -> None:
        dead.append(msg.body)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(
            SendResult(request_id="a", send_id="s").to_bytes(),
            SendResult(request_id="poison", send_id="s").to_bytes(),
            b"not json",
            SendResult(request_id="b", send_id="s").to_bytes(),
            topic=TOPIC,
        )

    assert handled == [["a"], ["b"]]
    assert len(dead) == 2
    assert b"not json" in dead
    assert any(b'"poison"' in body for body in dead)


async def test_a_good_batch_is_handled_in_one_call() -> None:
    broker = KafkaBroker()
    calls: list[list[str]] = []

    async def handle_many(results: Sequence[SendResult]) -> None:
        calls.append([r.request_id for r in results])

    ConsumerGroups(broker, "g").consume_batches(TOPIC, TypeAdapter(SendResult), handle_many)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(
            *(SendResult(request_id=str(i), send_id="s").to_bytes() for i in range(3)),
            topic=TOPIC,
        )
        await publish(test_broker, TOPIC, SendResult(request_id="x", send_id="s"), key="x")

    assert calls == [["0", "1", "2"], ["x"]]


class _IdleConsumer:
    """An aiokafka consumer with nothing to read: ``getmany`` comes back empty."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, Any]:
        self.calls.append((timeout_ms, max_records))
        return {}


async def test_a_batch_subscriber_fetches_again_at_once_after_an_empty_fetch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # FastStream's own batch subscriber sleeps after an empty fetch, and a record that
    # arrives meanwhile waits for the sleep to end; ours goes straight back to getmany.
    async def no_sleep(*_: Any) -> None:
        raise AssertionError("the subscriber slept after an empty fetch")

    monkeypatch.setattr(anyio, "sleep", no_sleep)
    broker = KafkaBroker()
    groups = ConsumerGroups(broker, "g")
    subscriber: Any = groups.subscriber(TOPIC, batch=True, max_records=7)
    consumer = _IdleConsumer()
    assert await subscriber.get_msg(consumer) == ()
    assert consumer.calls == [(BATCH_FETCH_WAIT_MS, 7)]
