"""Notification records as stored (snake_case) and as shown (the API's camelCase JSON)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clarion_shared.api import ApiModel
from clarion_shared.contracts.base import ErrorInfo, JsonObject
from clarion_shared.contracts.sends import ChannelType, SendMode

RecordStatus = Literal["sent", "queued", "failed"]


class NotificationRecord(BaseModel):
    """One receiver on one channel of one send. ``id`` is derived (send, uid, channel)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

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


def _is_none(value: object) -> bool:
    return value is None


class ChannelStatePublic(ApiModel):
    model_config = ConfigDict(frozen=True)

    channel_type: ChannelType
    channel_id: str
    status: RecordStatus
    code: str | None = Field(default=None, exclude_if=_is_none)
    message: str | None = Field(default=None, exclude_if=_is_none)


class ReceiverStatePublic(ApiModel):
    model_config = ConfigDict(frozen=True)

    uid: str
    channels: list[ChannelStatePublic]


class NotificationPublic(ApiModel):
    """A send's states, per receiver (in send order), per channel."""

    model_config = ConfigDict(frozen=True)

    notification_id: str
    mode: SendMode
    template_id: str
    template_version: int
    tag: str | None
    created_at: int
    receivers: list[ReceiverStatePublic]
