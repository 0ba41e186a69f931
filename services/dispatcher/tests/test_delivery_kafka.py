"""The delivery workers' subscribers and publisher (``delivery/consumers.py``,
``delivery/kafka.py``) on FastStream's in-memory broker: a job goes from its jobs topic
to the provider, a retry through its retry tier back to the provider, the last attempt
to the dead-letter topic with its reason, and every outcome to the status topic."""

from __future__ import annotations

import asyncio
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from clarion_devtools.helpers import wait_until
from clarion_dispatcher.delivery import consumers
from clarion_dispatcher.delivery.domain import RetryPolicy
from clarion_dispatcher.delivery.kafka import KafkaDeliveryPublisher
from clarion_dispatcher.delivery.providers.base import Retry, Sent
from clarion_dispatcher.delivery.service import Tuning
from clarion_shared.kafka import ConsumerGroups
from clarion_shared.topics import Topics

from .test_delivery_worker import ScriptedProvider, job, rig

TOPICS = Topics("unit.")


async def test_jobs_retries_dead_letters_and_events_go_through_their_topics() -> None:
    provider = ScriptedProvider(
        [Retry("ERR_PROVIDER_UNAVAILABLE", "503"), Sent("q-2", invalid_tokens=("t-old",))]
    )
    r = rig(provider, policy=RetryPolicy(max_attempts=3, base_s=0.2, cap_s=0.4))
    broker = KafkaBroker()
    r.worker.publisher = KafkaDeliveryPublisher(broker, TOPICS)
    r.worker.tuning = Tuning(policy=r.worker.tuning.policy)
    consumers.register(ConsumerGroups(broker, "delivery"), TOPICS, r.worker, ["email"])
    seen: dict[str, list[Any]] = {"status": [], "users": [], "dead": [], "retry": []}

    @broker.subscriber(TOPICS.status)
    async def on_status(msg: KafkaMessage) -> None:
        seen["status"].append(msg.body)

    @broker.subscriber(TOPICS.users_events)
    async def on_users(msg: KafkaMessage) -> None:
        seen["users"].append(msg.body)

    @broker.subscriber(f"{TOPICS.jobs('email')}.dlq")
    async def on_dead(msg: KafkaMessage) -> None:
        seen["dead"].append(dict(msg.headers))

    async with TestKafkaBroker(broker) as test_broker:
        first = job("u1")
        await test_broker.publish(first.to_bytes(), TOPICS.jobs("email"), key=b"app1:u1")

        async def two_calls() -> bool | None:
            return True if len(provider.calls) == 2 else None

        # Refused (503), retried through the 1 s tier, then sent.
        await wait_until(two_calls, timeout_s=10, interval_s=0.05, what="the retry")
        await asyncio.sleep(0.1)
        assert [b'"delivery_sent"' in body for body in seen["status"]] == [True]
        assert len(seen["users"]) == 1
        assert b"t-old" in seen["users"][0]

        provider.script = [Retry("ERR_PROVIDER_UNAVAILABLE", "still 503")]
        last = job("u2", attempt=3)
        await test_broker.publish(last.to_bytes(), TOPICS.jobs("email"), key=b"app1:u2")
        await asyncio.sleep(0.1)
        [headers] = seen["dead"]
        assert "still 503" in headers["dlq-reason"]
        assert b'"delivery_failed"' in seen["status"][-1]
