"""HTTP models of the channel routes.

Request models ignore fields they do not know: CometChat clients send extras
(``dataType``, ...).
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from clarion_shared.api import ApiModel
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import ChannelType

from .domain import Channel, ChannelChanges, NewChannel, mask_metadata
from .service import TypeAvailability


class ChannelCreate(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "In-app", "type": "in_app", "enabled": True}]}
    )

    name: str = Field(min_length=1, max_length=200)
    type: str = Field(
        description="in_app, push, email, sms or custom (whatsapp is refused with 403).",
        examples=["in_app"],
    )
    channel_id: str | None = Field(
        default=None, description="Slug; generated from the name when absent; immutable."
    )
    enabled: bool = False
    metadata: JsonObject = Field(
        default_factory=dict,
        description="Provider settings; credentials are never returned in full.",
    )

    def to_new(self) -> NewChannel:
        return NewChannel(self.name, self.type, self.channel_id, self.enabled, self.metadata)


class ChannelUpdate(ApiModel):
    """``channelId`` and ``type`` are immutable. ``metadata`` replaces the stored one;
    credentials sent back masked (``****abcd``) keep their stored value."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    metadata: JsonObject | None = None

    def to_changes(self) -> ChannelChanges:
        return ChannelChanges(self.name, self.enabled, self.metadata)


class ChannelPublic(ApiModel):
    id: str
    channel_id: str
    name: str
    type: ChannelType
    enabled: bool
    metadata: JsonObject
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, channel: Channel) -> ChannelPublic:
        return cls(
            id=channel.channel_id,
            channel_id=channel.channel_id,
            name=channel.name,
            type=channel.type,
            enabled=channel.enabled,
            metadata=mask_metadata(channel.metadata),
            created_at=channel.created_at,
            updated_at=channel.updated_at,
        )


class ChannelAvailability(ApiModel):
    type: str
    available: bool
    limit: int | None
    count: int

    @classmethod
    def of(cls, row: TypeAvailability) -> ChannelAvailability:
        return cls(type=row.type, available=row.available, limit=row.limit, count=row.count)
