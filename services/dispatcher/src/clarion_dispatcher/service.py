"""Use cases of the dispatcher: fan-out of one send chunk, and the in-app feed.

Every dependency is passed in; the protocols below are what the use cases need of
them. The real adapters live in ``adapters``; the in-memory ones in ``testing``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from clarion_shared.contracts.base import Contract
from clarion_shared.contracts.directory_replies import UserProfile
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.errors import ApiError, not_found
from clarion_shared.ids import now as clock_now
from clarion_shared.logging import get_logger
from clarion_shared.topics import STATUS, jobs_topic

from . import domain
from .models import (
    FeedEvent,
    FeedItem,
    FeedItemPublic,
    FeedTransition,
    NotificationPublic,
    NotificationRecord,
)

log = get_logger(__name__)

ReadState = Literal["read", "unread"]


class UserDirectory(Protocol):
    async def resolve(
        self, app_id: str, uids: Sequence[str], *, realtime: bool = False
    ) -> Mapping[str, UserProfile]:
        """Profiles of the uids that exist; an absent uid does not exist.

        ``realtime`` asks for the lane that does not wait behind batch lookups.

        Raises ``TimeoutError`` when the directory does not answer in time.
        """
        ...


class NotificationRepository(Protocol):
    async def add_many(self, records: Sequence[NotificationRecord]) -> None:
        """Insert the records that do not exist yet (by id); never change existing ones."""
        ...

    async def for_send(self, app_id: str, send_id: str) -> list[NotificationRecord]: ...


class FeedRepository(Protocol):
    async def add_many(self, items: Sequence[FeedItem]) -> None:
        """Insert the items that do not exist yet; a replay never resets read state."""
        ...

    async def page(
        self, owner: str, read: bool | None, page: int, per_page: int
    ) -> tuple[list[FeedItem], int]:
        """One page, newest first (``sent_at`` then id), and the total matching."""
        ...

    async def unread_count(self, owner: str) -> int: ...

    async def get(self, owner: str, item_id: str) -> FeedItem | None: ...

    async def mark_read(self, owner: str, item_id: str, at: int) -> FeedTransition | None:
        """Mark read in one conditional update; None when the owner has no such item."""
        ...

    async def mark_delivered(self, owner: str, item_id: str, at: int) -> FeedTransition | None: ...

    async def event_published(self, owner: str, item_id: str, event: FeedEvent) -> None:
        """The item's ``event`` status event is acknowledged: clear its pending flag."""
        ...

    async def delete(self, owner: str, item_id: str) -> bool: ...


class Publisher(Protocol):
    async def publish(self, topic: str, message: Contract, key: str | None) -> None:
        """Publish one record and wait for the broker's acknowledgement."""
        ...

    async def publish_many(
        self, topic: str, messages: Sequence[tuple[str | None, Contract]]
    ) -> None:
        """Publish many records pipelined; return once every one is acknowledged."""
        ...


@dataclass(frozen=True)
class ChunkOutcome:
    plan: domain.ChunkPlan
    duration_s: float


async def dispatch_chunk(
    command: SendNotification,
    *,
    directory: UserDirectory,
    notifications: NotificationRepository,
    feed: FeedRepository,
    publisher: Publisher,
    now: int | None = None,
) -> ChunkOutcome:
    """Fan one chunk out (see ``dispatch_chunks``)."""
    [outcome] = await dispatch_chunks(
        [command],
        directory=directory,
        notifications=notifications,
        feed=feed,
        publisher=publisher,
        now=now,
    )
    return outcome


async def dispatch_fetch(
    commands: Sequence[SendNotification],
    *,
    directory: UserDirectory,
    notifications: NotificationRepository,
    feed: FeedRepository,
    publisher: Publisher,
) -> list[ChunkOutcome]:
    """Fan out what one Kafka fetch holds: realtime sends first, then the rest.

    A realtime send has a client waiting on it. It has its own topics (sends and uid
    lookups), so it does not wait for batches; should one arrive with batch chunks in
    the same fetch, it still goes first.
    """
    realtime = [command for command in commands if command.reply_to is not None]
    queued = [command for command in commands if command.reply_to is None]
    outcomes: list[ChunkOutcome] = []
    for group in (realtime, queued):
        if group:
            outcomes += await dispatch_chunks(
                group,
                directory=directory,
                notifications=notifications,
                feed=feed,
                publisher=publisher,
            )
    return outcomes


async def dispatch_chunks(
    commands: Sequence[SendNotification],
    *,
    directory: UserDirectory,
    notifications: NotificationRepository,
    feed: FeedRepository,
    publisher: Publisher,
    now: int | None = None,
) -> list[ChunkOutcome]:
    """Fan chunks out together: resolve, render, store, queue jobs, report, reply.

    The commands of one Kafka fetch share the work: one directory resolution per app,
    one bulk write per collection, pipelined publishes. Safe to repeat: records and feed
    items have derived ids and are only inserted, jobs and events carry derived ids. The
    order (records and feed items, then publishes, then replies) means a reply always finds the feed
    items it announces; the caller commits the Kafka records only after this returns.
    """
    started = time.perf_counter()
    at = clock_now() if now is None else now
    wanted: dict[str, dict[str, None]] = {}
    for command in commands:
        wanted.setdefault(command.app_id, {}).update(dict.fromkeys(command.receivers))
    apps = list(wanted)
    realtime = any(command.reply_to is not None for command in commands)
    resolved = await asyncio.gather(
        *(directory.resolve(app_id, list(wanted[app_id]), realtime=realtime) for app_id in apps)
    )
    users_by_app = dict(zip(apps, resolved, strict=True))
    resolved_s = time.perf_counter() - started
    plans: list[domain.ChunkPlan] = []
    for command in commands:
        plans.append(domain.plan_chunk(command, users_by_app[command.app_id], at))
        await asyncio.sleep(0)  # rendering is CPU work: let realtime sends in between

    records = [record for plan in plans for record in plan.records]
    feed_items = [item for plan in plans for item in plan.feed_items]
    # Both collections are written at once: nothing reads either before the publishes.
    await asyncio.gather(
        notifications.add_many(records) if records else _nothing(),
        feed.add_many(feed_items) if feed_items else _nothing(),
    )
    stored_s = time.perf_counter() - started

    jobs: dict[str, list[tuple[str | None, Contract]]] = {}
    events: list[tuple[str | None, Contract]] = []
    for command, plan in zip(commands, plans, strict=True):
        for channel_type, channel_jobs in plan.jobs.items():
            jobs.setdefault(channel_type, []).extend(
                (domain.job_key(job.app_id, job.uid), job) for job in channel_jobs
            )
        events.extend((command.send_id, event) for event in plan.events)
    await asyncio.gather(
        *(
            publisher.publish_many(jobs_topic(channel_type), channel_jobs)
            for channel_type, channel_jobs in jobs.items()
        ),
        publisher.publish_many(STATUS, events),
    )
    await asyncio.gather(
        *(
            publisher.publish(
                command.reply_to.topic,
                SendResult(
                    request_id=command.reply_to.request_id,
                    send_id=command.send_id,
                    receivers=plan.results,
                ),
                key=command.reply_to.request_id,
            )
            for command, plan in zip(commands, plans, strict=True)
            if command.reply_to is not None
        )
    )
    duration_s = time.perf_counter() - started
    log.info(
        "dispatch.chunks_done",
        commands=len(commands),
        apps=len(apps),
        receivers=sum(len(plan.receivers) for plan in plans),
        sent=sum(plan.sent for plan in plans),
        failed=sum(plan.failed for plan in plans),
        records=len(records),
        feed_items=len(feed_items),
        jobs=sum(plan.job_count for plan in plans),
        events=len(events),
        resolve_ms=round(resolved_s * 1000, 1),
        store_ms=round((stored_s - resolved_s) * 1000, 1),
        duration_ms=round(duration_s * 1000, 1),
    )
    return [ChunkOutcome(plan=plan, duration_s=duration_s) for plan in plans]


async def _nothing() -> None:
    return None


# ---------------------------------------------------------------- in-app feed


async def list_feed(
    app_id: str,
    uid: str,
    read_state: ReadState | None,
    page: int,
    per_page: int,
    *,
    feed: FeedRepository,
) -> tuple[list[FeedItemPublic], int]:
    read = None if read_state is None else read_state == "read"
    items, total = await feed.page(domain.feed_owner(app_id, uid), read, page, per_page)
    return [domain.public_feed_item(item) for item in items], total


async def unread_count(app_id: str, uid: str, *, feed: FeedRepository) -> int:
    return await feed.unread_count(domain.feed_owner(app_id, uid))


async def mark_read(
    app_id: str,
    uid: str,
    item_id: str,
    *,
    feed: FeedRepository,
    publisher: Publisher,
    now: int | None = None,
) -> FeedItemPublic:
    """Idempotent; ``FeedItemRead`` is published by the call that made the change, or
    by the next call when a crash came between the change and the publish."""
    at = clock_now() if now is None else now
    owner = domain.feed_owner(app_id, uid)
    transition = await feed.mark_read(owner, item_id, at)
    if transition is None:
        raise _feed_item_not_found()
    item = transition.item
    if item.read_event_pending:
        await publisher.publish(STATUS, domain.feed_item_read(item), key=item.send_id)
        await feed.event_published(owner, item_id, "read")
    return domain.public_feed_item(item)


async def mark_delivered(
    app_id: str,
    uid: str,
    item_id: str,
    *,
    feed: FeedRepository,
    publisher: Publisher,
    now: int | None = None,
) -> FeedItemPublic:
    """Idempotent; ``FeedItemDelivered`` as for ``mark_read``."""
    at = clock_now() if now is None else now
    owner = domain.feed_owner(app_id, uid)
    transition = await feed.mark_delivered(owner, item_id, at)
    if transition is None:
        raise _feed_item_not_found()
    item = transition.item
    if item.delivered_event_pending:
        await publisher.publish(STATUS, domain.feed_item_delivered(item), key=item.send_id)
        await feed.event_published(owner, item_id, "delivered")
    return domain.public_feed_item(item)


async def delete_feed_item(app_id: str, uid: str, item_id: str, *, feed: FeedRepository) -> None:
    if not await feed.delete(domain.feed_owner(app_id, uid), item_id):
        raise _feed_item_not_found()


async def get_notification(
    app_id: str, notification_id: str, *, notifications: NotificationRepository
) -> NotificationPublic:
    found = domain.public_notification(await notifications.for_send(app_id, notification_id))
    if found is None:
        raise not_found("Notification")
    return found


def _feed_item_not_found() -> ApiError:
    return not_found("Feed item")
