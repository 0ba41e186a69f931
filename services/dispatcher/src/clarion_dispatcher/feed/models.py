"""Feed items as stored (snake_case); as shown (the API's camelCase JSON) they are
``clarion_shared.public.feed``, which the gateway documents too."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import ChannelType, SendMode
from clarion_shared.public.feed import (
    EngagementReport,
    FeedItemPublic,
    FeedQuery,
    FeedStatus,
    UnreadCountPublic,
)

__all__ = [
    "Engagement",
    "EngagementReport",
    "FeedEvent",
    "FeedItem",
    "FeedItemPublic",
    "FeedQuery",
    "FeedStatus",
    "FeedTransition",
    "UnreadCountPublic",
]

FeedEvent = Literal["read", "delivered"]


class Engagement(BaseModel):
    """One engagement that changed the item: its first, then each new topic."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    topic: str | None = None
    at: int


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
    template_category: str | None = None
    status: FeedStatus = "sent"
    read: bool = False
    sent_at: int
    delivered_at: int | None = None
    read_at: int | None = None
    engaged_at: int | None = None
    engagements: list[Engagement] = Field(default_factory=list)
    updated_at: int | None = Field(default=None, description="None: never changed since sent")
    # Set in the same update as the transition, cleared once its status event is
    # acknowledged: a crash in between leaves it set, and the next call publishes again.
    read_event_pending: bool = False
    delivered_event_pending: bool = False
    # The topics (None: the first engagement, without one) whose event is owed.
    engagement_events_pending: list[str | None] = Field(default_factory=list)

    def engagement_of(self, topic: str | None) -> Engagement | None:
        """The stored engagement an event of ``topic`` is about."""
        return next((e for e in self.engagements if e.topic == topic), None)


class FeedTransition(BaseModel):
    """An item after a state change was asked; ``changed`` only on the transition itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    item: FeedItem
    changed: bool
