"""Topic ``clarion.config.channels`` (compacted): the current channel configuration.

Key: ``app_id:channel_id``. A record with an empty value (tombstone) deletes the channel.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Contract, JsonObject
from .sends import ChannelType


class ChannelConfig(Contract):
    type: Literal["channel_config"] = "channel_config"
    v: Literal[1] = 1
    app_id: str
    channel_id: str
    name: str
    channel_type: ChannelType
    enabled: bool
    metadata: JsonObject = Field(default_factory=dict)
    updated_at: int

    @property
    def key(self) -> str:
        return f"{self.app_id}:{self.channel_id}"
