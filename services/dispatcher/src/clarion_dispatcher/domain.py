"""Pure rules of the fan-out and the feed: who fails, what is stored, what is said.

Nothing here does I/O. ``plan_chunk`` turns one ``SendNotification`` and the
directory's answer into everything the use case writes and publishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import JsonValue

from clarion_shared.contracts.base import ErrorInfo, JsonObject
from clarion_shared.contracts.directory_replies import UserProfile
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.contracts.replies import ReceiverResult
from clarion_shared.contracts.sends import CHANNEL_TYPES, SendNotification, TemplateChannel
from clarion_shared.contracts.status import (
    ChunkDispatched,
    DeliveryFailed,
    FeedItemDelivered,
    FeedItemRead,
    FeedItemSent,
    NotificationCreated,
)
from clarion_shared.ids import derive_id
from clarion_shared.templating import MissingVariables, Renderer

from .models import (
    ChannelStatePublic,
    FeedItem,
    FeedItemPublic,
    NotificationPublic,
    NotificationRecord,
    ReceiverStatePublic,
    RecordStatus,
)

ERR_USER_NOT_FOUND = "ERR_USER_NOT_FOUND"
ERR_INVALID_VARIABLES = "ERR_INVALID_VARIABLES"
IN_APP = "in_app"

StatusEventOut = NotificationCreated | FeedItemSent | DeliveryFailed | ChunkDispatched


def dedupe(receivers: Iterable[str]) -> list[str]:
    """Receivers without repeats, first occurrence kept, order kept."""
    return list(dict.fromkeys(receivers))


def feed_owner(app_id: str, uid: str) -> str:
    return f"{app_id}:{uid}"


def job_key(app_id: str, uid: str) -> str:
    return f"{app_id}:{uid}"


def record_id(app_id: str, send_id: str, uid: str, channel_id: str) -> str:
    """One record per (send, uid, channel); the app is part of it so that send ids
    chosen by other services cannot collide across apps."""
    return derive_id(app_id, send_id, uid, channel_id)


def event_id(entity_id: str, event_type: str) -> str:
    """Derived, so a replayed fan-out republishes the ids consumers already saw."""
    return derive_id(entity_id, event_type)


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


def render_content(
    renderer: Renderer, channel: TemplateChannel, values: Mapping[str, JsonValue]
) -> JsonObject:
    """The channel's content for one receiver; values are HTML-escaped in email ``html``."""
    escape_in = "html" if channel.channel_type == "email" else ""
    rendered = renderer.render(channel.content, values, escape_html_in=escape_in)
    # Rendering keeps the shape of its input: an object stays an object.
    return rendered if isinstance(rendered, dict) else {}


def _record_status(channel_type: str, failure: ErrorInfo | None) -> RecordStatus:
    if failure is not None:
        return "failed"
    return "sent" if channel_type == IN_APP else "queued"


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


def plan_chunk(
    command: SendNotification,
    users: Mapping[str, UserProfile],
    now: int,
) -> ChunkPlan:
    """Records, feed items, jobs, status events and results for one chunk.

    A receiver absent from ``users`` fails with ``ERR_USER_NOT_FOUND``; one missing a
    required variable fails with ``ERR_INVALID_VARIABLES``. A failed receiver still
    gets a (failed) record per channel, so nothing is dropped silently.
    """
    template = command.template
    renderer = Renderer(tuple(template.variable_schema))
    receivers = dedupe(command.receivers)
    batch_id = command.send_id if command.mode == "batch" else None
    campaign_id = command.send_id if command.mode == "campaign" else None

    records: list[NotificationRecord] = []
    feed_items: list[FeedItem] = []
    jobs: dict[str, list[DeliveryJob]] = {}
    created: list[StatusEventOut] = []
    feed_sent: list[StatusEventOut] = []
    failures: list[StatusEventOut] = []
    results: list[ReceiverResult] = []

    for position, uid in enumerate(receivers):
        profile = users.get(uid)
        values, failure = values_or_failure(uid, profile, renderer, command)
        for channel in template.channels:
            rid = record_id(command.app_id, command.send_id, uid, channel.channel_id)
            content: JsonObject | None = None
            if failure is None:
                content = render_content(renderer, channel, values)
            record = NotificationRecord(
                id=rid,
                app_id=command.app_id,
                send_id=command.send_id,
                mode=command.mode,
                batch_id=batch_id,
                campaign_id=campaign_id,
                uid=uid,
                channel_type=channel.channel_type,
                channel_id=channel.channel_id,
                template_id=template.template_id,
                template_version=template.version,
                content=content,
                tag=command.tag,
                status=_record_status(channel.channel_type, failure),
                error=failure,
                chunk=command.chunk,
                position=position,
                created_at=now,
                updated_at=now,
            )
            records.append(record)
            created.append(
                NotificationCreated(
                    event_id=event_id(rid, "notification_created"),
                    app_id=command.app_id,
                    send_id=command.send_id,
                    mode=command.mode,
                    occurred_at=now,
                    notification_id=rid,
                    uid=uid,
                    channel_type=channel.channel_type,
                    channel_id=channel.channel_id,
                )
            )
            if content is None or profile is None:
                continue
            if channel.channel_type == IN_APP:
                item = feed_item_for(record, content)
                feed_items.append(item)
                feed_sent.append(
                    FeedItemSent(
                        event_id=event_id(rid, "feed_item_sent"),
                        app_id=command.app_id,
                        send_id=command.send_id,
                        mode=command.mode,
                        occurred_at=now,
                        feed_item=public_feed_item(item).to_json(),
                    )
                )
            else:
                jobs.setdefault(channel.channel_type, []).append(
                    DeliveryJob(
                        job_id=rid,
                        app_id=command.app_id,
                        send_id=command.send_id,
                        uid=uid,
                        channel_type=channel.channel_type,
                        channel_id=channel.channel_id,
                        content=content,
                        contact=contact_points(profile),
                        created_at=now,
                    )
                )
        if failure is None:
            results.append(ReceiverResult(uid=uid, status="sent"))
        else:
            results.append(
                ReceiverResult(uid=uid, status="failed", code=failure.code, message=failure.message)
            )
            failures.append(
                DeliveryFailed(
                    event_id=event_id(derive_id(command.send_id, uid), "delivery_failed"),
                    app_id=command.app_id,
                    send_id=command.send_id,
                    mode=command.mode,
                    occurred_at=now,
                    uid=uid,
                    error=failure,
                )
            )

    sent = sum(1 for result in results if result.status == "sent")
    summary = ChunkDispatched(
        event_id=event_id(derive_id(command.send_id, str(command.chunk)), "chunk_dispatched"),
        app_id=command.app_id,
        send_id=command.send_id,
        mode=command.mode,
        occurred_at=now,
        chunk=command.chunk,
        chunks=command.chunks,
        total=command.total or len(receivers),
        sent=sent,
        failed=len(results) - sent,
    )
    return ChunkPlan(
        receivers=receivers,
        records=records,
        feed_items=feed_items,
        jobs=jobs,
        # Per send (one partition): a receiver's creation precedes its outcome; the
        # chunk summary comes last, once everything it counts has been said.
        events=[*created, *feed_sent, *failures, summary],
        results=results,
    )


def feed_item_for(record: NotificationRecord, content: JsonObject) -> FeedItem:
    """The in-app feed item of a sent ``in_app`` record (same id)."""
    return FeedItem(
        id=record.id,
        app_id=record.app_id,
        owner=feed_owner(record.app_id, record.uid),
        receiver=record.uid,
        send_id=record.send_id,
        mode=record.mode,
        # The public notification id is the send's id: the realtime `notificationId`,
        # or the batch / campaign the item came from.
        notification_id=record.send_id,
        batch_id=record.batch_id,
        campaign_id=record.campaign_id,
        channel_type=record.channel_type,
        channel_id=record.channel_id,
        template_id=record.template_id,
        template_version=record.template_version,
        content=content,
        tag=record.tag,
        status="sent",
        read=False,
        sent_at=record.created_at,
    )


def public_feed_item(item: FeedItem) -> FeedItemPublic:
    return FeedItemPublic(
        id=item.id,
        notification_id=item.notification_id,
        batch_id=item.batch_id,
        campaign_id=item.campaign_id,
        receiver=item.receiver,
        channel_type=item.channel_type,
        channel_id=item.channel_id,
        template_id=item.template_id,
        template_version=item.template_version,
        content=item.content,
        tag=item.tag,
        status=item.status,
        sent_at=item.sent_at,
        delivered_at=item.delivered_at,
        read_at=item.read_at,
    )


def feed_item_read(item: FeedItem) -> FeedItemRead:
    """The event of an item's one transition to read: its id is derived from the item
    and its time is the stored ``read_at``, so publishing it again repeats it exactly."""
    assert item.read_at is not None
    return FeedItemRead(
        event_id=event_id(item.id, "feed_item_read"),
        app_id=item.app_id,
        send_id=item.send_id,
        mode=item.mode,
        occurred_at=item.read_at,
        feed_item=public_feed_item(item).to_json(),
    )


def feed_item_delivered(item: FeedItem) -> FeedItemDelivered:
    assert item.delivered_at is not None
    return FeedItemDelivered(
        event_id=event_id(item.id, "feed_item_delivered"),
        app_id=item.app_id,
        send_id=item.send_id,
        mode=item.mode,
        occurred_at=item.delivered_at,
        feed_item=public_feed_item(item).to_json(),
    )


def public_notification(records: Iterable[NotificationRecord]) -> NotificationPublic | None:
    """One send's records grouped per receiver (in send order), per channel."""
    ordered = sorted(
        records, key=lambda r: (r.chunk, r.position, CHANNEL_TYPES.index(r.channel_type))
    )
    if not ordered:
        return None
    first = ordered[0]
    receivers: dict[str, list[ChannelStatePublic]] = {}
    for record in ordered:
        receivers.setdefault(record.uid, []).append(
            ChannelStatePublic(
                channel_type=record.channel_type,
                channel_id=record.channel_id,
                status=record.status,
                code=record.error.code if record.error else None,
                message=record.error.message if record.error else None,
            )
        )
    return NotificationPublic(
        notification_id=first.send_id,
        mode=first.mode,
        template_id=first.template_id,
        template_version=first.template_version,
        tag=first.tag,
        created_at=min(record.created_at for record in ordered),
        receivers=[
            ReceiverStatePublic(uid=uid, channels=channels) for uid, channels in receivers.items()
        ],
    )
