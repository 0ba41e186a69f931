"""Use cases of the fan-out: one Kafka fetch of send chunks, and the directory port.

Every dependency is passed in, with the ``Topics`` the fan-out publishes to; the
repositories' ports live with their resources (``notifications``, ``feed``,
``batches``), the publisher's at the root. The real adapters are named in ``app``; the
in-memory ones live in ``testing``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from clarion_shared.contracts.base import Contract, ErrorInfo
from clarion_shared.contracts.directory_replies import UserProfile
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.ids import now as clock_now
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger
from clarion_shared.topics import Topics

from ..batches import domain as batch_domain
from ..batches.service import BatchRepository
from ..feed.models import FeedItem
from ..feed.service import FeedRepository
from ..notifications.domain import RecordsRefused
from ..notifications.models import NotificationRecord
from ..notifications.service import NotificationRepository
from ..publisher import Publisher
from . import domain

log = get_logger(__name__)

RECEIVERS = Counter(
    "clarion_dispatch_receivers_total", "Receivers this process fanned out", ["mode"]
)

Keyed = tuple[str | None, Contract]


class DirectoryTimedOut(TimeoutError):
    """The user-directory did not answer a lookup in time.

    A ``TimeoutError``: the consumers' error policy counts it as transient, so the
    chunk is not committed and comes back.
    """


class UserDirectory(Resource, Protocol):
    async def resolve(
        self, app_id: str, uids: Sequence[str], *, realtime: bool = False
    ) -> Mapping[str, UserProfile]:
        """Profiles of the uids that exist; an absent uid does not exist.

        ``realtime`` asks for the lane that does not wait behind batch lookups.

        Raises ``DirectoryTimedOut`` when the directory does not answer in time.
        """
        ...

    async def ready(self) -> bool:
        """Whether lookups can be answered (the reply consumer is assigned)."""
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
    batches: BatchRepository,
    publisher: Publisher,
    topics: Topics,
    now: int | None = None,
) -> ChunkOutcome:
    """Fan one chunk out (see ``dispatch_chunks``)."""
    [outcome] = await dispatch_chunks(
        [command],
        directory=directory,
        notifications=notifications,
        feed=feed,
        batches=batches,
        publisher=publisher,
        topics=topics,
        now=now,
    )
    return outcome


async def dispatch_fetch(
    commands: Sequence[SendNotification],
    *,
    directory: UserDirectory,
    notifications: NotificationRepository,
    feed: FeedRepository,
    batches: BatchRepository,
    publisher: Publisher,
    topics: Topics,
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
                batches=batches,
                publisher=publisher,
                topics=topics,
            )
    return outcomes


async def dispatch_chunks(  # long: the fan-out's steps in order, each one call
    commands: Sequence[SendNotification],
    *,
    directory: UserDirectory,
    notifications: NotificationRepository,
    feed: FeedRepository,
    batches: BatchRepository,
    publisher: Publisher,
    topics: Topics,
    now: int | None = None,
) -> list[ChunkOutcome]:
    """Fan chunks out together: resolve, render, store, queue jobs, report, reply.

    The commands of one Kafka fetch share the work: one directory resolution per app,
    one bulk write per collection, pipelined publishes. Safe to repeat: records and feed
    items have derived ids and are only inserted, batch chunks' outcomes are recorded
    once, jobs and events carry derived ids. The order (writes, then the publishes
    and the replies at once) means a reply finds the feed items it announces, and a
    ``ChunkDispatched`` the outcomes it counts; the caller commits after this returns.
    """
    started = time.perf_counter()
    at = clock_now() if now is None else now
    users_by_app = await _resolve(commands, directory)
    resolved_s = time.perf_counter() - started
    plans: list[domain.ChunkPlan] = []
    for command in commands:
        plans.append(domain.plan_chunk(command, users_by_app[command.app_id], at))
        await asyncio.sleep(0)  # rendering is CPU work: let realtime sends in between

    records = [record for plan in plans for record in plan.records]
    feed_items = [item for plan in plans for item in plan.feed_items]
    chunk_outcomes = _chunk_outcomes(commands, plans)
    refused = await _store(records, feed_items, chunk_outcomes, notifications, feed, batches)
    if refused:
        plans = await _fail_refused(
            commands, plans, users_by_app, at, refused, notifications, feed, batches
        )
        records = [record for plan in plans for record in plan.records]
        feed_items = [item for plan in plans for item in plan.feed_items]
    stored_s = time.perf_counter() - started

    events, _ = await asyncio.gather(
        _publish(commands, plans, publisher, topics), _reply(commands, plans, publisher)
    )
    duration_s = time.perf_counter() - started
    for command, plan in zip(commands, plans, strict=True):
        RECEIVERS.labels(mode=command.mode).inc(len(plan.receivers))
    log.info(
        "dispatch.chunks_done",
        commands=len(commands),
        apps=len(users_by_app),
        receivers=sum(len(plan.receivers) for plan in plans),
        sent=sum(plan.sent for plan in plans),
        failed=sum(plan.failed for plan in plans),
        records=len(records),
        feed_items=len(feed_items),
        jobs=sum(plan.job_count for plan in plans),
        events=events,
        resolve_ms=round(resolved_s * 1000, 1),
        store_ms=round((stored_s - resolved_s) * 1000, 1),
        duration_ms=round(duration_s * 1000, 1),
    )
    return [ChunkOutcome(plan=plan, duration_s=duration_s) for plan in plans]


async def _resolve(
    commands: Sequence[SendNotification], directory: UserDirectory
) -> dict[str, Mapping[str, UserProfile]]:
    """One resolution per app, of the union of its commands' receivers, all at once."""
    wanted: dict[str, dict[str, None]] = {}
    for command in commands:
        wanted.setdefault(command.app_id, {}).update(dict.fromkeys(command.receivers))
    apps = list(wanted)
    realtime = any(command.reply_to is not None for command in commands)
    resolved = await asyncio.gather(
        *(directory.resolve(app_id, list(wanted[app_id]), realtime=realtime) for app_id in apps)
    )
    return dict(zip(apps, resolved, strict=True))


def _chunk_outcomes(
    commands: Sequence[SendNotification], plans: Sequence[domain.ChunkPlan]
) -> list[batch_domain.ChunkOutcome]:
    """What the batch chunks among ``commands`` recorded for each receiver."""
    outcomes = (
        batch_domain.chunk_outcome(command, plan.receivers, plan.records)
        for command, plan in zip(commands, plans, strict=True)
    )
    return [outcome for outcome in outcomes if outcome is not None]


async def _store(
    records: Sequence[NotificationRecord],
    feed_items: Sequence[FeedItem],
    chunk_outcomes: Sequence[batch_domain.ChunkOutcome],
    notifications: NotificationRepository,
    feed: FeedRepository,
    batches: BatchRepository,
) -> frozenset[str]:
    """Write the records, the feed items and the batch chunks' outcomes at once
    (nothing reads them before the publishes); the ids the database refused for good,
    if any. Other errors are raised: the chunk is retried."""
    outcomes = await asyncio.gather(
        notifications.add_many(records) if records else _nothing(),
        feed.add_many(feed_items) if feed_items else _nothing(),
        batches.record(chunk_outcomes) if chunk_outcomes else _nothing(),
        return_exceptions=True,
    )
    refused: set[str] = set()
    for outcome in outcomes:
        if isinstance(outcome, RecordsRefused):
            refused |= outcome.ids
        elif isinstance(outcome, BaseException):
            raise outcome
    return frozenset(refused)


async def _fail_refused(
    commands: Sequence[SendNotification],
    plans: Sequence[domain.ChunkPlan],
    users_by_app: Mapping[str, Mapping[str, UserProfile]],
    at: int,
    refused: frozenset[str],
    notifications: NotificationRepository,
    feed: FeedRepository,
    batches: BatchRepository,
) -> list[domain.ChunkPlan]:
    """Fail the receivers whose records or feed items were refused, and only them:
    their records are stored again as failed (``ERR_STORE_FAILED``, no content), their
    feed items removed, their batch chunks' outcomes corrected, and the plans redone so
    that results and events say so."""
    failure = ErrorInfo(
        code=domain.ERR_STORE_FAILED, message="The notification could not be stored."
    )
    replanned: list[domain.ChunkPlan] = []
    failed_records: list[NotificationRecord] = []
    dropped_items: list[str] = []
    corrected: list[tuple[SendNotification, domain.ChunkPlan]] = []
    for command, plan in zip(commands, plans, strict=True):
        uids = {record.uid for record in plan.records if record.id in refused}
        if not uids:
            replanned.append(plan)
            continue
        again = domain.plan_chunk(
            command, users_by_app[command.app_id], at, forced=dict.fromkeys(uids, failure)
        )
        failed_records += [record for record in again.records if record.uid in uids]
        dropped_items += [item.id for item in plan.feed_items if item.receiver in uids]
        replanned.append(again)
        corrected.append((command, again))
        log.warning("dispatch.receivers_not_stored", send_id=command.send_id, receivers=len(uids))
    chunk_outcomes = _chunk_outcomes([c for c, _ in corrected], [p for _, p in corrected])
    await asyncio.gather(
        notifications.put_many(failed_records),
        feed.remove_many(dropped_items),
        batches.correct(chunk_outcomes) if chunk_outcomes else _nothing(),
    )
    return replanned


async def _publish(
    commands: Sequence[SendNotification],
    plans: Sequence[domain.ChunkPlan],
    publisher: Publisher,
    topics: Topics,
) -> int:
    """Publish the jobs (per channel type) and the status events at once; how many events."""
    jobs: dict[str, list[Keyed]] = {}
    events: list[Keyed] = []
    for command, plan in zip(commands, plans, strict=True):
        for channel_type, channel_jobs in plan.jobs.items():
            jobs.setdefault(channel_type, []).extend(
                (domain.job_key(job.app_id, job.uid), job) for job in channel_jobs
            )
        events.extend((command.send_id, event) for event in plan.events)
    await asyncio.gather(
        *(
            publisher.publish_many(topics.jobs(channel_type), channel_jobs)
            for channel_type, channel_jobs in jobs.items()
        ),
        publisher.publish_many(topics.status, events),
    )
    return len(events)


async def _reply(
    commands: Sequence[SendNotification],
    plans: Sequence[domain.ChunkPlan],
    publisher: Publisher,
) -> None:
    """Answer each realtime command on its reply topic, with its own receivers only."""
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


async def _nothing() -> None:
    return None
