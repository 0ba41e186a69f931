"""A send's states (owned by the dispatcher, forwarded by the gateway)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from ..api import ApiModel
from ..contracts.sends import ChannelType, SendMode

RecordStatus = Literal["sent", "queued", "failed"]


def _is_none(value: object) -> bool:
    return value is None


class ChannelStatePublic(ApiModel):
    model_config = ConfigDict(frozen=True)

    channel_type: ChannelType
    channel_id: str
    status: RecordStatus
    code: str | None = Field(default=None, exclude_if=_is_none)
    message: str | None = Field(default=None, exclude_if=_is_none)
    provider_id: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description="the provider's id of the message, once a delivery worker sent it",
    )
    attempts: int | None = Field(
        default=None, exclude_if=_is_none, description="provider calls a delivery took"
    )


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
