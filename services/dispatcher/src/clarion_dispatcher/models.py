"""What the dispatcher keeps and what it shows: stored records and public (HTTP) views.

Stored models are snake_case and carry every field the repositories persist; public
models are the API's camelCase JSON, built from the stored ones by pure functions in
``domain``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from clarion_shared.contracts.base import ErrorInfo, JsonObject
from clarion_shared.contracts.sends import ChannelType, SendMode

RecordStatus = Literal["sent", "queued", "failed"]
FeedStatus = Literal["sent", "delivered", "read"]


class _Stored(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class NotificationRecord(_Stored):
    """One receiver on one channel of one send. ``id`` is derived (send, uid, channel)."""

    id: str
    app_id: str
    send_id: str
    mode: SendMode
    batch_id: str | None = None
    campaign_id: str | None = None
    uid: str
    channel_type: ChannelType
    channel_id: str
    template_id: str
    template_version: int
    content: JsonObject | None = None
    tag: str | None = None
    status: RecordStatus
    error: ErrorInfo | None = None
    chunk: int = 0
    position: int = Field(default=0, description="index of the receiver in its chunk")
    created_at: int
    updated_at: int


class FeedItem(_Stored):
    """A user's in-app feed item; same id as its notification record."""

    id: str
    app_id: str
    owner: str = Field(description="f'{app_id}:{uid}', the feed query's equality key")
    receiver: str
    send_id: str
    mode: SendMode
    notification_id: str
    batch_id: str | None = None
    campaign_id: str | None = None
    channel_type: ChannelType = "in_app"
    channel_id: str
    template_id: str
    template_version: int
    content: JsonObject
    tag: str | None = None
    status: FeedStatus = "sent"
    read: bool = False
    sent_at: int
    delivered_at: int | None = None
    read_at: int | None = None
    # Set in the same update as the transition, cleared once its status event is
    # acknowledged: a crash in between leaves it set, and the next call publishes again.
    read_event_pending: bool = False
    delivered_event_pending: bool = False


FeedEvent = Literal["read", "delivered"]


def _is_none(value: object) -> bool:
    return value is None


class _Public(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True
    )

    def to_json(self) -> JsonObject:
        data: JsonObject = self.model_dump(mode="json", by_alias=True)
        return data


class FeedItemPublic(_Public):
    id: str
    notification_id: str
    batch_id: str | None
    campaign_id: str | None
    receiver: str
    channel_type: ChannelType
    channel_id: str
    template_id: str
    template_version: int
    content: JsonObject
    tag: str | None
    status: FeedStatus
    sent_at: int
    delivered_at: int | None
    read_at: int | None


class ChannelStatePublic(_Public):
    channel_type: ChannelType
    channel_id: str
    status: RecordStatus
    code: str | None = Field(default=None, exclude_if=_is_none)
    message: str | None = Field(default=None, exclude_if=_is_none)


class ReceiverStatePublic(_Public):
    uid: str
    channels: list[ChannelStatePublic]


class NotificationPublic(_Public):
    notification_id: str
    mode: SendMode
    template_id: str
    template_version: int
    tag: str | None
    created_at: int
    receivers: list[ReceiverStatePublic]


class UnreadCountPublic(_Public):
    count: int


class DeletedPublic(_Public):
    success: bool = True


class FeedTransition(_Stored):
    """An item after a state change was asked; ``changed`` only on the transition itself."""

    item: FeedItem
    changed: bool
