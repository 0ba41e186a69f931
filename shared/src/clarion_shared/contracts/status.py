"""Topic ``clarion.status``: what happened to notifications, batches and campaigns.

Key: the send id (notification, batch or campaign id), so one send's events are ordered.
Every event has a derived ``event_id``: a replayed fan-out republishes the same ids and
consumers drop what they have already seen.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from .base import Contract, ErrorInfo, JsonObject
from .sends import ChannelType, SendMode


class _StatusEvent(Contract):
    v: Literal[1] = 1
    event_id: str
    app_id: str
    send_id: str
    mode: SendMode
    occurred_at: int


class NotificationCreated(_StatusEvent):
    type: Literal["notification_created"] = "notification_created"
    notification_id: str
    uid: str
    channel_type: ChannelType
    channel_id: str


class FeedItemSent(_StatusEvent):
    type: Literal["feed_item_sent"] = "feed_item_sent"
    feed_item: JsonObject


class FeedItemDelivered(_StatusEvent):
    type: Literal["feed_item_delivered"] = "feed_item_delivered"
    feed_item: JsonObject


class FeedItemRead(_StatusEvent):
    type: Literal["feed_item_read"] = "feed_item_read"
    feed_item: JsonObject


class FeedItemEngaged(_StatusEvent):
    """The user engaged with a feed item (``POST .../{id}/engagement``): once per item
    and topic, and once for its first engagement when that had no topic. The event id
    is derived from the item and the topic; ``occurred_at`` is the stored time, so a
    republished event repeats exactly."""

    type: Literal["feed_item_engaged"] = "feed_item_engaged"
    topic: str | None = None
    first_engagement: bool = Field(description="the item's first engagement (analytics count it)")
    feed_item: JsonObject


class DeliverySent(_StatusEvent):
    """A delivery worker handed one notification to its provider, which accepted it
    (``provider_id``: the provider's id of the message, when it gives one). The event id
    is derived from the notification id: a redelivered job republishes the same."""

    type: Literal["delivery_sent"] = "delivery_sent"
    uid: str
    channel_type: ChannelType
    channel_id: str
    notification_id: str
    template_id: str | None = Field(
        default=None, description="the send's template (analytics count it per template)"
    )
    provider_id: str | None = None
    attempts: int = Field(default=1, description="provider calls it took")
    chunk: int | None = Field(
        default=None,
        description="the send's chunk the receiver is in (its job's): the tracker reads "
        "only that chunk's receivers",
    )


class DeliveryFailed(_StatusEvent):
    """A receiver failed: at the fan-out (no channel: every channel of the receiver),
    or one delivery at its worker (``channel_type``, ``channel_id`` and
    ``notification_id`` set; the error is the provider's classified code)."""

    type: Literal["delivery_failed"] = "delivery_failed"
    uid: str
    channel_type: ChannelType | None = None
    channel_id: str | None = None
    notification_id: str | None = None
    template_id: str | None = Field(
        default=None, description="the send's template (analytics count it per template)"
    )
    error: ErrorInfo
    chunk: int | None = Field(
        default=None,
        description="the send's chunk the receiver is in (its job's): the tracker reads "
        "only that chunk's receivers",
    )


class ChannelTally(Contract):
    """What one chunk did on one channel of its template: deliveries final as sent or
    failed, and those ``queued`` for a worker or a retry (API.md, Finality)."""

    channel_type: ChannelType
    channel_id: str
    sent: int = 0
    failed: int = 0
    queued: int = 0


class ReceiverState(Contract):
    """One receiver of a chunk: ``pending`` while a delivery is queued, else ``sent``
    when one delivery is sent, else ``failed`` with the first failure."""

    uid: str
    status: Literal["pending", "sent", "failed"]
    code: str | None = None
    message: str | None = None


class ChunkDispatched(_StatusEvent):
    """One chunk of a send is fanned out: counts for the progress read models, per
    channel of the template, and (for a campaign's chunk) each receiver's state, which
    the gateway keeps as the campaign's recipient states."""

    type: Literal["chunk_dispatched"] = "chunk_dispatched"
    chunk: int
    chunks: int
    total: int
    sent: int
    failed: int
    channels: list[ChannelTally] = Field(default_factory=list)
    template_id: str | None = Field(
        default=None, description="the send's template (analytics count it per template)"
    )
    receivers: list[ReceiverState] | None = Field(
        default=None, description="the chunk's receivers in order (campaign chunks only)"
    )


class ReceiversSettled(_StatusEvent):
    """Receivers of a batch or campaign chunk that were ``pending`` (a delivery queued
    for a worker) are final now: published by the tracker, which settles them from the
    workers' ``DeliverySent`` and ``DeliveryFailed``, in the same transaction as the
    offsets of those events. A reader keeping receiver states moves a receiver from
    pending to its final state only (a final state is never changed back)."""

    type: Literal["receivers_settled"] = "receivers_settled"
    chunk: int
    receivers: list[ReceiverState]


BatchStatus = Literal["completed", "partially_failed", "failed"]


class BatchCompleted(_StatusEvent):
    """A batch is final (API.md, Finality), decided once by the dispatcher: published
    exactly once per batch to ``read_committed`` readers (a Kafka transaction). Its
    fields are the batch status object (``GET .../notifications/batches/{batchId}``)."""

    type: Literal["batch_completed"] = "batch_completed"
    batch_id: str
    status: BatchStatus
    total: int
    sent: int
    delivered: int
    failed: int
    pending: int
    created_at: int
    completed_at: int


class CampaignFinished(_StatusEvent):
    """A campaign is final, as the gateway (which owns campaigns) reflects the
    dispatcher's ``BatchCompleted(mode=campaign)``: published by the gateway once it has
    applied it (again on a redelivery, with the same derived ``event_id``), so the
    webhook-emitter can send the campaign object (API.md, Webhooks). ``send_id`` is the
    campaign id."""

    type: Literal["campaign_finished"] = "campaign_finished"
    campaign_id: str
    status: BatchStatus
    campaign: JsonObject = Field(description="the campaign object, as GET .../campaigns/{id}")


AnyStatusEvent = (
    NotificationCreated
    | FeedItemSent
    | FeedItemDelivered
    | FeedItemRead
    | FeedItemEngaged
    | DeliverySent
    | DeliveryFailed
    | ChunkDispatched
    | ReceiversSettled
    | BatchCompleted
    | CampaignFinished
)
StatusEvent = Annotated[AnyStatusEvent, Field(discriminator="type")]
status_event_adapter: TypeAdapter[AnyStatusEvent] = TypeAdapter(StatusEvent)
