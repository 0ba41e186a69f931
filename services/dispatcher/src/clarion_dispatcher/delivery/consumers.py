"""The delivery workers' subscribers: each channel type's jobs topic and its retry
tiers, in consumer groups of their own (``<prefix>.<topic>``), so each channel type's
workers scale on their own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import TypeAdapter

from clarion_shared import kafka
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.topics import RETRY_TIERS_S, Topics

from .domain import now_ms
from .service import Worker

_JOB: TypeAdapter[DeliveryJob] = TypeAdapter(DeliveryJob)


def register(
    groups: kafka.ConsumerGroups,
    topics: Topics,
    worker: Worker,
    channel_types: Sequence[str],
    *,
    max_records: int = 500,
    hold_s: float = 30.0,
) -> None:
    """Subscribe the worker to the jobs of ``channel_types``; before ``broker.start()``.

    A retry tier's fetch is held until its jobs are due, at most ``hold_s`` (a consumer
    that does not come back to the broker for minutes leaves its group); what is not
    due then goes back to its tier.
    """

    async def fresh(jobs: Sequence[DeliveryJob]) -> None:
        await worker.deliver(jobs)

    async def due(jobs: Sequence[DeliveryJob]) -> None:
        latest = max(job.not_before or 0 for job in jobs)
        wait_s = min(hold_s, (latest - now_ms()) / 1000)
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        now = now_ms()
        await worker.deliver(
            [job for job in jobs if (job.not_before or 0) <= now],
            not_due=[job for job in jobs if (job.not_before or 0) > now],
        )

    for channel_type in channel_types:
        groups.consume_batches(topics.jobs(channel_type), _JOB, fresh, max_records=max_records)
        for tier in RETRY_TIERS_S:
            topic = topics.jobs_retry(channel_type, tier)
            groups.consume_batches(topic, _JOB, due, max_records=max_records)
