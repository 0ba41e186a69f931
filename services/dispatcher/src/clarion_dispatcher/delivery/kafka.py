"""What the delivery workers publish: status events, invalid push tokens, jobs to try
later (on their channel type's retry tiers) and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.base import Contract
from clarion_shared.topics import RETRY_TIERS_S, Topics

from . import domain
from .service import Said


class KafkaDeliveryPublisher:
    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._topics = topics

    async def publish(self, said: Said, *, now_ms: int) -> None:
        topics, broker = self._topics, self._broker
        sends: list[Awaitable[object]] = []
        if said.events:
            keyed = [(event.send_id, event) for event in said.events]
            sends.append(kafka.publish_many(broker, topics.status, keyed))
        if said.tokens:
            removals = [(f"{t.app_id}:{t.uid}", t) for t in said.tokens]
            sends.append(kafka.publish_many(broker, topics.users_events, removals))
        tiers: dict[str, list[tuple[str | None, Contract]]] = {}
        for job in said.later:
            wait_s = max(0.0, ((job.not_before or now_ms) - now_ms) / 1000)
            tier = domain.tier_for(wait_s, RETRY_TIERS_S)
            topic = topics.jobs_retry(job.channel_type, tier)
            tiers.setdefault(topic, []).append((domain.job_key(job), job))
        sends.extend(kafka.publish_many(broker, topic, jobs) for topic, jobs in tiers.items())
        await asyncio.gather(*sends)
        for job, reason in said.dead:
            await kafka.dead_letter(
                broker,
                topics.jobs(job.channel_type),
                job.to_bytes(),
                domain.job_key(job).encode(),
                reason,
            )
