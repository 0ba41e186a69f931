"""Notification records as stored (snake_case); as shown (the API's camelCase JSON) they
are ``clarion_shared.public.notifications``, which the gateway documents too."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from clarion_shared.contracts.base import ErrorInfo, JsonObject
from clarion_shared.contracts.sends import ChannelType, SendMode
from clarion_shared.public.notifications import (
    ChannelStatePublic,
    NotificationPublic,
    ReceiverStatePublic,
    RecordStatus,
)

__all__ = [
    "ChannelStatePublic",
    "NotificationPublic",
    "NotificationRecord",
    "ReceiverStatePublic",
    "RecordStatus",
]


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
