"""Feed items as stored (snake_case); as shown (the API's camelCase JSON) they are
``clarion_shared.public.feed``, which the gateway documents too."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import ChannelType, SendMode
from clarion_shared.public.feed import FeedItemPublic, FeedStatus, UnreadCountPublic

__all__ = [
    "FeedEvent",
    "FeedItem",
    "FeedItemPublic",
    "FeedStatus",
    "FeedTransition",
    "ReadState",
    "UnreadCountPublic",
]

FeedEvent = Literal["read", "delivered"]
ReadState = Literal["read", "unread"]


class FeedItem(BaseModel):
    """A user's in-app feed item; same id as its notification record."""

    model_config = ConfigDict(frozen=True, extra="ignore")

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


class FeedTransition(BaseModel):
    """An item after a state change was asked; ``changed`` only on the transition itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    item: FeedItem
    changed: bool
