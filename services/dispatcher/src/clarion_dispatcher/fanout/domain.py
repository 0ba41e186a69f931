"""Pure rules of the fan-out: who fails, what is stored, what is queued, what is said.

Nothing here does I/O. ``plan_chunk`` turns one ``SendNotification`` and the
directory's answer into everything the use case writes and publishes: it plans each
receiver (``plan_receiver``), each of its channels (``notification_record``, then a
feed item or a ``delivery_job``), and then the chunk's status events (``chunk_events``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from pydantic import JsonValue

from clarion_shared.contracts.base import ErrorInfo, JsonObject
from clarion_shared.contracts.directory_replies import UserProfile
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.contracts.replies import ReceiverResult
from clarion_shared.contracts.sends import SendNotification, TemplateChannel
from clarion_shared.contracts.status import (
    ChannelTally,
    ChunkDispatched,
    DeliveryFailed,
    FeedItemSent,
    NotificationCreated,
    ReceiverState,
)
from clarion_shared.ids import derive_id
from clarion_shared.templating import MissingVariables, Renderer

from ..batches.domain import receiver_outcome
from ..feed.domain import feed_item_for, feed_item_sent
from ..feed.models import FeedItem
from ..notifications.domain import event_id, record_id
from ..notifications.models import NotificationRecord, RecordStatus
from .rendering import render_all, template_size

ERR_USER_NOT_FOUND = "ERR_USER_NOT_FOUND"
ERR_INVALID_VARIABLES = "ERR_INVALID_VARIABLES"
ERR_STORE_FAILED = "ERR_STORE_FAILED"
IN_APP = "in_app"

StatusEventOut = NotificationCreated | FeedItemSent | DeliveryFailed | ChunkDispatched


def dedupe(receivers: Iterable[str]) -> list[str]:
    """Receivers without repeats, first occurrence kept, order kept."""
    return list(dict.fromkeys(receivers))


def job_key(app_id: str, uid: str) -> str:
    return f"{app_id}:{uid}"


def contact_points(profile: UserProfile) -> JsonObject:
    """The user's contact points (``metadata["@private"]``), for delivery workers."""
    private = profile.metadata.get("@private")
    return dict(private) if isinstance(private, dict) else {}


def values_or_failure(
    uid: str,
    profile: UserProfile | None,
    renderer: Renderer,
    command: SendNotification,
) -> tuple[dict[str, JsonValue], ErrorInfo | None]:
    """The receiver's rendering values, or why it cannot be sent to (all channels)."""
    if profile is None:
        return {}, ErrorInfo(code=ERR_USER_NOT_FOUND, message=f"User {uid} does not exist.")
    try:
        return renderer.values_for(command.variables.get(uid), command.common_variables), None
    except MissingVariables as exc:
        return {}, ErrorInfo(
            code=ERR_INVALID_VARIABLES,
            message=f"Missing required variables: {', '.join(exc.keys)}.",
        )


def record_status(channel_type: str, failure: ErrorInfo | None) -> RecordStatus:
    if failure is not None:
        return "failed"
    return "sent" if channel_type == IN_APP else "queued"


@dataclass(frozen=True)
class SendContext:
    """What every receiver of one command shares: the command, its renderer, the time."""

    command: SendNotification
    channels: Sequence[TemplateChannel]
    template_bytes: Sequence[int]  # each channel's template content, serialized
    renderer: Renderer
    batch_id: str | None
    campaign_id: str | None
    now: int

    @classmethod
    def of(cls, command: SendNotification, now: int) -> SendContext:
        template = command.template
        return cls(
            command=command,
            channels=template.channels,
            template_bytes=[template_size(channel) for channel in template.channels],
            renderer=Renderer(tuple(template.variable_schema)),
            batch_id=command.send_id if command.mode == "batch" else None,
            campaign_id=command.send_id if command.mode == "campaign" else None,
            now=now,
        )


# ---------------------------------------------------------------- per channel


def notification_record(
    send: SendContext,
    uid: str,
    position: int,
    channel: TemplateChannel,
    content: JsonObject | None,
    failure: ErrorInfo | None,
) -> NotificationRecord:
    """The record of one receiver on one channel (failed, with no content, on ``failure``)."""
    command = send.command
    template = command.template
    return NotificationRecord(
        id=record_id(command.app_id, command.send_id, uid, channel.channel_id),
        app_id=command.app_id,
        send_id=command.send_id,
        mode=command.mode,
        batch_id=send.batch_id,
        campaign_id=send.campaign_id,
        uid=uid,
        channel_type=channel.channel_type,
        channel_id=channel.channel_id,
        template_id=template.template_id,
        template_version=template.version,
        content=content,
        tag=command.tag,
        status=record_status(channel.channel_type, failure),
        error=failure,
        chunk=command.chunk,
        position=position,
        created_at=send.now,
        updated_at=send.now,
    )


def delivery_job(
    record: NotificationRecord, content: JsonObject, profile: UserProfile
) -> DeliveryJob:
    """The job of a queued record, for the delivery worker of its channel type."""
    return DeliveryJob(
        job_id=record.id,
        app_id=record.app_id,
        send_id=record.send_id,
        uid=record.uid,
        channel_type=record.channel_type,
        channel_id=record.channel_id,
        content=content,
        contact=contact_points(profile),
        template_id=record.template_id,
        mode=record.mode,
        chunk=record.chunk,
        created_at=record.created_at,
    )


# ---------------------------------------------------------------- per receiver


class ReceiverPlan(NamedTuple):
    """One receiver's part of a chunk: its records, feed items and jobs (channel order),
    its result, and its failure event when it failed. A named tuple: one is built per
    receiver on the hot path, and a tuple is cheaper to build than a frozen dataclass."""

    records: list[NotificationRecord]
    feed_items: list[FeedItem]
    jobs: list[DeliveryJob]
    result: ReceiverResult
    failed: DeliveryFailed | None


def receiver_result(uid: str, failure: ErrorInfo | None) -> ReceiverResult:
    if failure is None:
        return ReceiverResult(uid=uid, status="sent")
    return ReceiverResult(uid=uid, status="failed", code=failure.code, message=failure.message)


def delivery_failed(send: SendContext, uid: str, failure: ErrorInfo) -> DeliveryFailed:
    command = send.command
    return DeliveryFailed(
        event_id=event_id(derive_id(command.send_id, uid), "delivery_failed"),
        app_id=command.app_id,
        send_id=command.send_id,
        mode=command.mode,
        occurred_at=send.now,
        uid=uid,
        template_id=command.template.template_id,
        error=failure,
    )


def plan_receiver(
    send: SendContext,
    position: int,
    uid: str,
    profile: UserProfile | None,
    failure: ErrorInfo | None = None,
) -> ReceiverPlan:
    """A failed receiver still gets a (failed) record per channel, so nothing is dropped
    silently; a sent one gets a feed item per ``in_app`` channel and a job per other.

    ``failure`` fails the receiver whatever else holds (its records could not be
    stored, say)."""
    contents: list[JsonObject] = []
    if failure is None:
        values, failure = values_or_failure(uid, profile, send.renderer, send.command)
        if failure is None:
            contents, failure = render_all(send, values)
    records: list[NotificationRecord] = []
    feed_items: list[FeedItem] = []
    jobs: list[DeliveryJob] = []
    for index, channel in enumerate(send.channels):
        content = None if failure is not None else contents[index]
        record = notification_record(send, uid, position, channel, content, failure)
        records.append(record)
        if content is None or profile is None:
            continue
        if channel.channel_type == IN_APP:
            category = send.command.template.template_category
            feed_items.append(feed_item_for(record, content, category))
        else:
            jobs.append(delivery_job(record, content, profile))
    failed = None if failure is None else delivery_failed(send, uid, failure)
    return ReceiverPlan(records, feed_items, jobs, receiver_result(uid, failure), failed)


# ---------------------------------------------------------------- the chunk


def notification_created(record: NotificationRecord) -> NotificationCreated:
    return NotificationCreated(
        event_id=event_id(record.id, "notification_created"),
        app_id=record.app_id,
        send_id=record.send_id,
        mode=record.mode,
        occurred_at=record.created_at,
        notification_id=record.id,
        uid=record.uid,
        channel_type=record.channel_type,
        channel_id=record.channel_id,
    )


def chunk_dispatched(
    send: SendContext,
    receivers: Sequence[str],
    results: Sequence[ReceiverResult],
    records: Sequence[NotificationRecord],
) -> ChunkDispatched:
    """The chunk's summary: how many of its ``receivers`` were sent to, how many failed,
    per channel; a campaign's chunk also says each receiver's state (API.md, Finality)."""
    command = send.command
    sent = sum(1 for result in results if result.status == "sent")
    states = None
    if command.mode == "campaign":
        by_uid: dict[str, list[NotificationRecord]] = {}
        for record in records:
            by_uid.setdefault(record.uid, []).append(record)
        states = [
            ReceiverState(**receiver_outcome(uid, by_uid.get(uid, [])).model_dump())
            for uid in receivers
        ]
    return ChunkDispatched(
        event_id=event_id(derive_id(command.send_id, str(command.chunk)), "chunk_dispatched"),
        app_id=command.app_id,
        send_id=command.send_id,
        mode=command.mode,
        occurred_at=send.now,
        chunk=command.chunk,
        chunks=command.chunks,
        total=command.total or len(receivers),
        sent=sent,
        failed=len(results) - sent,
        channels=channel_tallies(send.channels, records),
        template_id=command.template.template_id,
        receivers=states,
    )


def channel_tallies(
    channels: Sequence[TemplateChannel], records: Iterable[NotificationRecord]
) -> list[ChannelTally]:
    """Per channel of the template (in its order), its records' final and queued counts."""
    tallies = {
        channel.channel_id: ChannelTally(
            channel_type=channel.channel_type, channel_id=channel.channel_id
        )
        for channel in channels
    }
    counts: dict[str, dict[str, int]] = {key: {} for key in tallies}
    for record in records:
        per = counts.setdefault(record.channel_id, {})
        per[record.status] = per.get(record.status, 0) + 1
    return [
        tally.model_copy(
            update={
                "sent": counts[key].get("sent", 0),
                "failed": counts[key].get("failed", 0),
                "queued": counts[key].get("queued", 0),
            }
        )
        for key, tally in tallies.items()
    ]


def chunk_events(
    records: Iterable[NotificationRecord],
    feed_items: Iterable[FeedItem],
    failures: Iterable[DeliveryFailed],
    summary: ChunkDispatched,
) -> list[StatusEventOut]:
    """Per send (one partition): a receiver's creation precedes its outcome; the chunk
    summary comes last, once everything it counts has been said."""
    return [
        *(notification_created(record) for record in records),
        *(feed_item_sent(item) for item in feed_items),
        *failures,
        summary,
    ]


@dataclass(frozen=True)
class ChunkPlan:
    """Everything one chunk writes and publishes, in the order the use case does it."""

    receivers: list[str]
    records: list[NotificationRecord]
    feed_items: list[FeedItem]
    jobs: dict[str, list[DeliveryJob]] = field(default_factory=dict)
    events: list[StatusEventOut] = field(default_factory=list)
    results: list[ReceiverResult] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(1 for result in self.results if result.status == "sent")

    @property
    def failed(self) -> int:
        return sum(1 for result in self.results if result.status == "failed")

    @property
    def job_count(self) -> int:
        return sum(len(jobs) for jobs in self.jobs.values())


def jobs_by_channel_type(parts: Iterable[ReceiverPlan]) -> dict[str, list[DeliveryJob]]:
    """The receivers' jobs per channel type, in receiver order."""
    jobs: dict[str, list[DeliveryJob]] = {}
    for part in parts:
        for job in part.jobs:
            jobs.setdefault(job.channel_type, []).append(job)
    return jobs


def plan_chunk(
    command: SendNotification,
    users: Mapping[str, UserProfile],
    now: int,
    forced: Mapping[str, ErrorInfo] | None = None,
) -> ChunkPlan:
    """Records, feed items, jobs, status events and results for one chunk.

    A receiver absent from ``users`` fails with ``ERR_USER_NOT_FOUND``; one missing a
    required variable fails with ``ERR_INVALID_VARIABLES``; one whose content cannot be
    rendered, with ``ERR_RENDER_FAILED`` or ``ERR_CONTENT_TOO_LARGE``; one in
    ``forced``, with the failure given. A failed receiver still gets a (failed)
    record per channel, so nothing is dropped silently.
    """
    send = SendContext.of(command, now)
    receivers = dedupe(command.receivers)
    parts = [
        plan_receiver(send, position, uid, users.get(uid), (forced or {}).get(uid))
        for position, uid in enumerate(receivers)
    ]
    records = [record for part in parts for record in part.records]
    feed_items = [item for part in parts for item in part.feed_items]
    results = [part.result for part in parts]
    failures = [part.failed for part in parts if part.failed is not None]
    summary = chunk_dispatched(send, receivers, results, records)
    return ChunkPlan(
        receivers=receivers,
        records=records,
        feed_items=feed_items,
        jobs=jobs_by_channel_type(parts),
        events=chunk_events(records, feed_items, failures, summary),
        results=results,
    )
