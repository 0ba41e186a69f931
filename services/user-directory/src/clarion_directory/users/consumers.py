"""Kafka subscribers of the users resource: uid lookups (request/reply) and user events
from other services. Parse, call one use case, publish."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from pydantic import TypeAdapter

from clarion_shared import kafka
from clarion_shared.contracts.base import Contract
from clarion_shared.contracts.directory_lookups import LookupUsers
from clarion_shared.contracts.users_events import AnyUserEvent, user_event_adapter
from clarion_shared.topics import Topics

from . import events as user_events
from . import service
from .announcements import PublishFailed, UserChanges
from .domain import MetadataLimits
from .service import UserRepository

lookup_adapter: TypeAdapter[LookupUsers] = TypeAdapter(LookupUsers)


def register(
    groups: kafka.ConsumerGroups,
    topics: Topics,
    repo: UserRepository,
    user_changes: UserChanges,
    auto_offset_reset: Literal["earliest", "latest"] = "earliest",
    limits: MetadataLimits = MetadataLimits(),
) -> None:
    """Subscribe to the lookup topics (batch and realtime) and to the user events."""
    broker = groups.broker
    options = {"auto_offset_reset": auto_offset_reset}

    async def answer(lookups: Sequence[LookupUsers]) -> None:
        replies = await service.resolve_many(repo, lookups)
        by_topic: dict[str, list[tuple[str | None, Contract]]] = {}
        for lookup, reply in zip(lookups, replies, strict=True):
            by_topic.setdefault(lookup.reply_topic, []).append((lookup.request_id, reply))
        await asyncio.gather(
            *(kafka.publish_many(broker, topic, msgs) for topic, msgs in by_topic.items())
        )

    # A fetch's lookups are answered together: they share one read per app. Realtime
    # lookups have their own topic, consumed beside the batch one, so they never wait
    # for a batch's (possibly whole-app) read.
    for topic in (topics.directory_lookups_realtime, topics.directory_lookups):
        groups.consume_batches(topic, lookup_adapter, answer, max_records=64, **options)

    async def apply(events: Sequence[AnyUserEvent]) -> None:
        try:
            await user_events.apply_user_events(repo, user_changes, events, limits)
        except PublishFailed as exc:
            # Transient: the events are delivered again, applied again (a no-op), and
            # their users announced.
            raise TimeoutError(str(exc)) from exc

    # A fetch's events are applied in order (refused push tokens together) and announced
    # in one record per app.
    groups.consume_batches(
        topics.users_events, user_event_adapter, apply, max_records=500, **options
    )
